//! The deploy files: the Dockerfile's build stage copies everything the
//! release build reads (the workspace's manifests, every member, the
//! protobuf sources `daypass-proto/build.rs` compiles, every path
//! dependency), and `.dockerignore` excludes none of it. Checked without
//! a Docker daemon, from the files themselves.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &str) -> String {
    std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Sources copied by the first (build) stage: `COPY a [b …] dest`.
fn build_stage_copies(dockerfile: &str) -> Vec<String> {
    let mut stages = 0;
    let mut out = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        if line.starts_with("FROM ") {
            stages += 1;
            continue;
        }
        if stages == 1 {
            if let Some(rest) = line.strip_prefix("COPY ") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                assert!(
                    !words.iter().any(|w| w.starts_with("--from")),
                    "the build stage copies from another stage: {line}"
                );
                out.extend(
                    words[..words.len() - 1]
                        .iter()
                        .map(|w| w.trim_end_matches('/').to_owned()),
                );
            }
        }
    }
    out
}

/// What the release build reads from the context.
fn needed() -> Vec<String> {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    let mut need = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        "src".to_owned(),
    ];
    for m in manifest["workspace"]["members"]
        .as_array()
        .expect("members")
    {
        need.push(m.as_str().expect("member").to_owned());
    }
    for (_, dep) in manifest["dependencies"].as_table().expect("dependencies") {
        if let Some(p) = dep.get("path").and_then(|p| p.as_str()) {
            need.push(p.to_owned());
        }
    }
    // daypass-proto/build.rs compiles ../proto/daypass/v1/*.proto.
    let build = read("daypass-proto/build.rs");
    assert!(
        build.contains("../proto"),
        "daypass-proto/build.rs no longer reads ../proto?"
    );
    need.push("proto".to_owned());
    need.sort();
    need.dedup();
    need
}

#[test]
fn the_dockerfile_copies_everything_the_release_build_reads() {
    let copied = build_stage_copies(&read("deploy/Dockerfile"));
    assert!(!copied.is_empty(), "no COPY in the build stage");
    for n in needed() {
        assert!(
            copied
                .iter()
                .any(|c| c == &n || c == "." || n.starts_with(&format!("{c}/"))),
            "deploy/Dockerfile's build stage does not copy {n} (copies {copied:?})"
        );
        assert!(root().join(&n).exists(), "{n} is needed but missing");
    }
    // Every copied path exists (a typo fails the build).
    for c in &copied {
        assert!(
            root().join(c).exists(),
            "deploy/Dockerfile copies {c}, which does not exist"
        );
    }
}

#[test]
fn the_dockerignore_keeps_what_the_build_copies() {
    let ignore = read(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(patterns.contains(&"target"), "the build output is not sent");
    for n in needed() {
        for p in &patterns {
            assert!(
                n != *p && !n.starts_with(&format!("{p}/")),
                ".dockerignore's {p:?} excludes {n}, which the build needs"
            );
        }
    }
}
