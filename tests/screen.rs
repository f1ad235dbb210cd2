//! The office warning screen end to end: a real server with its HTTPS
//! screen listener, pairing through the real `ScreenService`, and
//!
//! * over plain HTTPS: who may look (no cookie, a bad or used or expired
//!   code, a revoked session), that nothing but `GET` exists, the security
//!   headers, and what the log records (never a secret);
//! * in a real browser (Debian's headless Chromium, driven over the
//!   DevTools protocol): the page renders, a new grant and a new alert
//!   appear within 2 s, the page survives a server restart, and a revoked
//!   screen falls back to pairing. A screenshot is saved for docs/.

mod common;

use std::time::Duration;

use chrono::{Datelike as _, TimeZone as _};
use common::{https, *};
use daypass::{
    clock::{Clock as _, SystemClock, Timestamp},
    pb,
};

/// 10:00 UTC on the next weekday: inside the default office hours, so the
/// only alert the browser test provokes is the one it means to.
fn next_weekday_10() -> Timestamp {
    let now = chrono::Utc
        .timestamp_millis_opt(SystemClock.now().millis())
        .single()
        .expect("now");
    let mut day = now.date_naive() + chrono::Days::new(1);
    while day.weekday().num_days_from_monday() >= 5 {
        day = day + chrono::Days::new(1);
    }
    Timestamp(
        day.and_hms_opt(10, 0, 0)
            .expect("10:00")
            .and_utc()
            .timestamp_millis(),
    )
}

async fn with_screen(alerts: bool) -> TestServer {
    let s = TestServer::start_with(|c| {
        c.screen.enabled = true;
        c.alerts.enabled = alerts;
    })
    .await;
    s.clock.set(next_weekday_10());
    s
}

async fn pair(s: &TestServer, name: &str, ttl_secs: u64) -> String {
    s.admin()
        .await
        .screens
        .pair_screen(pb::PairScreenRequest {
            name: name.into(),
            ttl_secs,
        })
        .await
        .expect("pair")
        .into_inner()
        .code
}

/// `daypass_screen=…` from a `Set-Cookie` answer.
fn session_cookie(r: &https::Response) -> String {
    let set = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no cookie set: {r:?}"));
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    set.split(';').next().expect("cookie").to_owned()
}

#[tokio::test]
async fn only_a_paired_screen_sees_the_page_and_nothing_on_it_writes() {
    let s = with_screen(false).await;
    let ca = s.ca.cert_pem().to_owned();
    let at = s.screen_addr.expect("screen listener");

    // Unpaired: the page sends to pairing, the data say 401.
    let r = https::get(&ca, at, "/", None).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/pair")));
    assert_eq!(https::get(&ca, at, "/api/view", None).await.status, 401);
    assert_eq!(https::get(&ca, at, "/events", None).await.status, 401);
    let form = https::get(&ca, at, "/pair", None).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("daypass screen pair"), "{}", form.body);
    for (h, v) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(form.header(h), Some(v), "{h}");
    }
    assert!(
        form.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'self'"))
    );

    // A wrong code, then the right one (dashes and case do not matter),
    // which works once.
    let code = pair(&s, "office-wall", 0).await;
    let wrong = https::get(&ca, at, &format!("/pair?code={}", "0".repeat(32)), None).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("not valid"), "{}", wrong.body);
    assert!(wrong.header("set-cookie").is_none());
    let ok = https::get(
        &ca,
        at,
        &format!("/pair?code={}", code.to_uppercase().replace('-', "")),
        None,
    )
    .await;
    assert_eq!((ok.status, ok.header("location")), (303, Some("/")));
    let cookie = session_cookie(&ok);
    let again = https::get(&ca, at, &format!("/pair?code={code}"), None).await;
    assert_eq!(again.status, 400, "a code opens one session only");

    // The session sees the page and the view, which shows a new grant.
    let page = https::get(&ca, at, "/", Some(&cookie)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Active access"));
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-7: customer cannot log in").await;
    let view = https::get(&ca, at, "/api/view", Some(&cookie)).await;
    assert_eq!(view.status, 200);
    let v: serde_json::Value = serde_json::from_str(&view.body).expect("view JSON");
    assert_eq!(v["screen"], "office-wall");
    assert_eq!(v["grants"][0]["id"], g.id.as_str());
    assert_eq!(v["grants"][0]["holder"], "alice");
    assert_eq!(v["grants"][0]["reason"], "INC-7: customer cannot log in");
    assert_eq!(v["health"]["problem"], serde_json::Value::Null);
    // The event stream sends a view at once.
    let stream = https::request(
        &ca,
        at,
        "GET",
        "/events",
        Some(&cookie),
        Duration::from_millis(800),
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert!(stream.body.contains("event: view"), "{}", stream.body);
    assert!(stream.body.contains(g.id.as_str()));

    // Nothing but GET: no write action exists on the screen.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/", "/pair", "/api/view", "/events"] {
            let r =
                https::request(&ca, at, method, path, Some(&cookie), Duration::from_secs(5)).await;
            assert_eq!(r.status, 405, "{method} {path}");
        }
    }
    // A forged cookie is no session.
    let forged = format!("daypass_screen=office-wall.{}", "a".repeat(64));
    assert_eq!(
        https::get(&ca, at, "/api/view", Some(&forged)).await.status,
        401
    );

    // An expired code opens nothing.
    let late = pair(&s, "lobby", 60).await;
    s.clock.advance_secs(61);
    let r = https::get(&ca, at, &format!("/pair?code={late}"), None).await;
    assert_eq!(r.status, 400);

    // Revoked: the session is gone at once.
    s.admin()
        .await
        .screens
        .revoke_screen(pb::RevokeScreenRequest {
            name: "office-wall".into(),
        })
        .await
        .expect("revoke");
    assert_eq!(
        https::get(&ca, at, "/api/view", Some(&cookie)).await.status,
        401
    );
    s.enrol("eve", pb::Role::Auditor).await;
    let mut eve = s.auditor("eve").await;
    let screens = eve
        .screens
        .list_screens(pb::ListScreensRequest {})
        .await
        .expect("auditors list screens")
        .into_inner()
        .screens;
    let wall = screens
        .iter()
        .find(|x| x.name == "office-wall")
        .expect("listed");
    assert_eq!(wall.status, "revoked");
    assert_eq!(wall.revoked_by, "staff/ada");

    // The log: who issued codes, which screen opened a session from where,
    // who revoked it; never a code or a session secret.
    let entries = s.entries().await;
    let screen_kinds: Vec<&str> = kinds(&entries)
        .into_iter()
        .filter(|k| k.starts_with("screen."))
        .collect();
    assert_eq!(
        screen_kinds,
        [
            "screen.pairing_issued",
            "screen.session_opened",
            "screen.pairing_issued",
            "screen.revoked"
        ]
    );
    let opened = entries
        .iter()
        .find(|e| e.entry.kind == "screen.session_opened")
        .expect("opened");
    assert_eq!(opened.entry.actor, "screen/office-wall");
    assert!(opened.entry.details["peer"].starts_with("127.0.0.1:"));
    let secret = cookie.split('.').nth(1).expect("secret");
    for e in &entries {
        let text = serde_json::to_string(&e.entry.details).expect("json");
        assert!(!text.contains(secret), "the session secret is in the log");
        assert!(!text.contains(&code), "a pairing code is in the log");
        assert!(!text.contains(&code.replace('-', "")));
    }
}

/// The spec's browser test: renders, a grant and an alert within 2 s,
/// keeps going through a restart, goes back to pairing when revoked.
#[tokio::test]
async fn the_warning_screen_in_a_real_browser() {
    let Some(chromium) = common::browser::find("the_warning_screen_in_a_real_browser") else {
        return;
    };
    let mut s = with_screen(true).await;
    let at = s.screen_addr.expect("screen listener");
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut rory = s.enrol("rory", pb::Role::Root).await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", pb::ApprovalPolicy::Auto, false)
        .await;
    let code = pair(&s, "office-wall", 0).await;

    let mut b = common::browser::Browser::launch(&chromium).await;
    b.navigate(&format!("https://{at}/pair?code={code}")).await;
    b.wait_until(
        "the page renders its first view",
        "document.body && document.body.dataset.ready === '1' && location.pathname === '/'",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(
        b.eval("document.getElementById('grant-count').textContent")
            .await,
        "0"
    );
    assert_eq!(
        b.eval("document.getElementById('health').className").await,
        "health ok"
    );

    // A new grant appears within 2 s.
    let g = request(&mut alice, "acme", "INC-42: customer cannot log in").await;
    let took = b
        .wait_until(
            "the new grant",
            &format!("!!document.querySelector('tr[data-grant=\"{}\"]')", g.id),
            Duration::from_secs(2),
        )
        .await;
    eprintln!("grant shown after {took:?}");
    let row = b
        .eval(&format!(
            "document.querySelector('tr[data-grant=\"{}\"]').innerText",
            g.id
        ))
        .await;
    let row = row.as_str().expect("row text");
    assert!(
        row.contains("alice") && row.contains("acme") && row.contains("INC-42"),
        "{row}"
    );
    assert!(
        row.contains(" h ") || row.contains("min"),
        "time left: {row}"
    );

    // A root holder acts: the monitor raises root-activity, shown in 2 s.
    request(&mut rory, "globex", "INC-43: disk full on db-1").await;
    let took = b
        .wait_until(
            "the new alert",
            "[...document.querySelectorAll('#alerts li')].some(li => li.innerText.includes('root-activity'))",
            Duration::from_secs(2),
        )
        .await;
    eprintln!("alert shown after {took:?}");
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("warning-screen.png");
    std::fs::write(&out, &png).expect("save the screenshot");
    eprintln!("screenshot: {}", out.display());

    // Through a restart: the page notices, reconnects, and goes on.
    s.stop().await;
    b.wait_until(
        "the page says it lost the server",
        "!document.getElementById('connection').hidden",
        Duration::from_secs(10),
    )
    .await;
    s.start_again().await;
    let mut bob = s.enrol("bob", pb::Role::Support).await;
    let g2 = request(&mut bob, "acme", "INC-44: export stuck").await;
    b.wait_until(
        "a grant made after the restart",
        &format!("!!document.querySelector('tr[data-grant=\"{}\"]')", g2.id),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        b.eval("document.getElementById('connection').hidden").await,
        true
    );

    // Revoked: the screen goes back to pairing.
    s.admin()
        .await
        .screens
        .revoke_screen(pb::RevokeScreenRequest {
            name: "office-wall".into(),
        })
        .await
        .expect("revoke");
    b.wait_until(
        "the revoked screen shows the pairing page",
        "location.pathname === '/pair' && !!document.getElementById('code')",
        Duration::from_secs(10),
    )
    .await;
}
