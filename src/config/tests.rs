use super::*;

const MINIMAL: &str = r#"
        listen = "127.0.0.1:0"
        data_dir = "/tmp/x"
        [tls]
        ca = "ca.pem"
        cert = "server.pem"
        key = "server.key"
    "#;

#[test]
fn defaults_are_the_promises() {
    let c: Config = toml::from_str(MINIMAL).unwrap();
    c.check().unwrap();
    assert_eq!(c.grants.max_duration_secs, 86_400);
    assert_eq!(c.grants.pending_ttl_secs, 3_600);
    assert_eq!(c.staff.max_root_holders, 2);
    assert_eq!(c.log_key_path(), PathBuf::from("log.key"));
    assert!(c.metrics.enabled);
    assert_eq!(c.metrics.listen, "127.0.0.1:9464".parse().unwrap());
}

#[test]
fn the_metrics_section_is_read_and_checked() {
    let set = format!("{MINIMAL}\n[metrics]\nenabled = false\nlisten = \"127.0.0.1:9100\"\n");
    let c: Config = toml::from_str(&set).unwrap();
    assert!(!c.metrics.enabled);
    assert_eq!(c.metrics.listen.port(), 9100);
    let typo = format!("{MINIMAL}\n[metrics]\nlisten_addr = \"127.0.0.1:9100\"\n");
    assert!(
        toml::from_str::<Config>(&typo).is_err(),
        "unknown keys are refused"
    );
    let bad = format!("{MINIMAL}\n[metrics]\nlisten = \"localhost\"\n");
    assert!(toml::from_str::<Config>(&bad).is_err(), "a socket address");
}

#[test]
fn the_screen_is_off_unless_configured() {
    let c: Config = toml::from_str(MINIMAL).unwrap();
    assert!(!c.screen.enabled);
    let set = format!("{MINIMAL}\n[screen]\nenabled = true\nlisten = \"0.0.0.0:9443\"\n");
    let c: Config = toml::from_str(&set).unwrap();
    assert!(c.screen.enabled);
    assert_eq!(c.screen.listen.port(), 9443);
    let typo = format!("{MINIMAL}\n[screen]\nport = 9443\n");
    assert!(toml::from_str::<Config>(&typo).is_err());
}

#[test]
fn the_tile_api_is_off_and_private_unless_configured() {
    let c: Config = toml::from_str(MINIMAL).unwrap();
    assert!(!c.tiles.enabled);
    assert!(!c.tiles.public_hashes);
    let set = format!(
        "{MINIMAL}\n[tiles]\nenabled = true\nlisten = \"0.0.0.0:9445\"\npublic_hashes = true\n"
    );
    let c: Config = toml::from_str(&set).unwrap();
    assert!(c.tiles.enabled && c.tiles.public_hashes);
    assert_eq!(c.tiles.listen.port(), 9445);
    let typo = format!("{MINIMAL}\n[tiles]\npublic = true\n");
    assert!(toml::from_str::<Config>(&typo).is_err());
}

#[test]
fn the_shipped_example_config_is_valid() {
    let c: Config = toml::from_str(include_str!("../../deploy/daypass.example.toml")).unwrap();
    c.check().unwrap();
    assert_eq!(c.bootstrap_admin.as_deref(), Some("ada"));
    assert_eq!(c.metrics, MetricsSettings::default());
}

#[test]
fn unknown_keys_are_refused() {
    let typo = format!("{MINIMAL}\n[grants]\nmax_duraton_secs = 10\n");
    let err = toml::from_str::<Config>(&typo).unwrap_err().to_string();
    assert!(err.contains("max_duraton_secs"), "{err}");
}

#[test]
fn limits_cannot_be_raised() {
    let over = format!("{MINIMAL}\n[grants]\nmax_duration_secs = 86401\n");
    let c: Config = toml::from_str(&over).unwrap();
    assert!(c.check().is_err());
    let ahead = format!("{MINIMAL}\n[grants]\nmax_schedule_ahead_secs = 31622401\n");
    let c: Config = toml::from_str(&ahead).unwrap();
    assert!(c.check().is_err());
    let roots = format!("{MINIMAL}\n[staff]\nmax_root_holders = 3\n");
    let c: Config = toml::from_str(&roots).unwrap();
    assert!(c.check().is_err());
}

#[test]
fn webhooks_are_checked() {
    let hook = |extra: &str| {
        format!(
            "{MINIMAL}\n[[webhooks]]\nname = \"ops\"\nurl = \"https://hooks.example/x\"\n\
                 secret_file = \"ops.key\"\n{extra}\n"
        )
    };
    let c: Config = toml::from_str(&hook("")).unwrap();
    c.check().unwrap();
    let h = &c.webhooks[0];
    assert_eq!((h.max_attempts, h.format), (12, WebhookFormat::Json));
    assert_eq!((h.backoff_initial_ms, h.backoff_max_ms), (1000, 300_000));
    let err = |extra: &str| {
        toml::from_str::<Config>(&hook(extra))
            .map_err(|e| e.to_string())
            .and_then(|c| c.check().map_err(|e| e.to_string()))
            .unwrap_err()
    };
    let e = err("events = [\"grant.requested\", \"grant.teleported\"]");
    assert!(
        e.contains("\"grant.teleported\" is not a notifiable kind"),
        "{e}"
    );
    assert!(err("events = [\"call.refused\"]").contains("call.refused"));
    assert!(err("format = \"xml\"").contains("xml"));
    assert!(err("retries = 3").contains("retries"));
    assert!(err("max_attempts = 0").contains("max_attempts"));
    let ftp = hook("").replace("https://hooks.example/x", "ftp://hooks.example/x");
    let e = toml::from_str::<Config>(&ftp).unwrap().check().unwrap_err();
    assert!(e.to_string().contains("not http or https"), "{e}");
    let twice = format!(
        "{}[[webhooks]]\nname = \"ops\"\nurl = \"http://b/\"\nsecret_file = \"k\"\n",
        hook("")
    );
    let e = toml::from_str::<Config>(&twice)
        .unwrap()
        .check()
        .unwrap_err();
    assert!(e.to_string().contains("two webhooks"), "{e}");
}

#[test]
fn syslog_forwarders_are_read_and_checked() {
    let section = |extra: &str| {
        format!(
            "{MINIMAL}\n[[syslog]]\nname = \"siem\"\naddress = \"siem.example:6514\"\n\
             ca_file = \"siem-ca.pem\"\n{extra}\n"
        )
    };
    let c: Config = toml::from_str(&section("")).unwrap();
    c.check().unwrap();
    let s = &c.syslog[0];
    assert_eq!((s.app_name.as_str(), s.facility.code()), ("daypass", 10));
    assert_eq!(s.format, crate::siem::settings::SyslogFormat::Json);
    assert_eq!((s.backoff_initial_ms, s.backoff_max_ms), (1000, 60_000));
    let c: Config = toml::from_str(&section("facility = \"local4\"\nformat = \"ocsf\"")).unwrap();
    assert_eq!(c.syslog[0].facility.code(), 20);
    let err = |extra: &str| {
        toml::from_str::<Config>(&section(extra))
            .map_err(|e| e.to_string())
            .and_then(|c| c.check().map_err(|e| e.to_string()))
            .unwrap_err()
    };
    let e = err("facility = \"local9\"");
    assert!(
        e.contains("\"local9\" is not a syslog facility") && e.contains("local7"),
        "{e}"
    );
    assert!(err("format = \"cef\"").contains("cef"));
    assert!(err("port = 514").contains("port"));
    let e = err("client_cert = \"c.pem\"");
    assert!(
        e.contains("syslog \"siem\": client_cert and client_key go together"),
        "{e}"
    );
    let e = err("hostname = \"broker one\"");
    assert!(
        e.contains("hostname") && e.contains("without spaces"),
        "{e}"
    );
    let e = err("backoff_initial_ms = 0");
    assert!(e.contains("backoff_initial_ms"), "{e}");
    let no_port = section("").replace("siem.example:6514", "siem.example");
    let e = toml::from_str::<Config>(&no_port)
        .unwrap()
        .check()
        .unwrap_err();
    assert!(e.to_string().contains("must be host:port"), "{e}");
    let twice = format!(
        "{}[[syslog]]\nname = \"siem\"\naddress = \"b:6514\"\nca_file = \"k\"\n",
        section("")
    );
    let e = toml::from_str::<Config>(&twice)
        .unwrap()
        .check()
        .unwrap_err();
    assert!(e.to_string().contains("two [[syslog]] sections"), "{e}");
}

/// The example in the module docs parses and passes the checks.
#[test]
fn the_module_doc_example_is_a_valid_config() {
    let doc = include_str!("../config.rs");
    let example: String = doc
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .skip_while(|l| !l.contains("```toml"))
        .skip(1)
        .take_while(|l| !l.contains("```"))
        .map(|l| {
            l.strip_prefix("//! ")
                .or_else(|| l.strip_prefix("//!"))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let c: Config = toml::from_str(&example).unwrap();
    c.check().unwrap();
    assert_eq!(c.syslog[0].name, "siem");
}

#[test]
fn recertification_is_off_by_default_and_bounded() {
    let c: Config = toml::from_str(MINIMAL).unwrap();
    assert_eq!(c.staff.recertify_days, 0);
    let on = format!("{MINIMAL}\n[staff]\nrecertify_days = 90\n");
    let c: Config = toml::from_str(&on).unwrap();
    c.check().unwrap();
    assert_eq!(c.staff.recertify_days, 90);
    let over = format!("{MINIMAL}\n[staff]\nrecertify_days = 3651\n");
    let err = toml::from_str::<Config>(&over)
        .unwrap()
        .check()
        .unwrap_err()
        .to_string();
    assert!(err.contains("staff.recertify_days"), "{err}");
    let negative = format!("{MINIMAL}\n[staff]\nrecertify_days = -1\n");
    assert!(toml::from_str::<Config>(&negative).is_err());
}
