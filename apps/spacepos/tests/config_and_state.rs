//! Bad configuration and damaged state files, through the CLI.

#![allow(clippy::unwrap_used)] // test code

mod support;

use support::Node;

#[test]
fn unknown_key_in_the_config_file_names_the_field_the_file_and_the_line() {
    let node = Node::new();
    let file = node.file("custom.toml");
    std::fs::write(&file, "[sync]\nsend_frequency = 5\nsend_frequncy = 7\n").unwrap();
    let run = node.run(&["--config", file.to_str().unwrap(), "config", "show"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("sync.send_frequncy"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{} line 3", file.display())),
        "{}",
        run.stderr
    );
}

#[test]
fn negative_frequency_from_the_environment_names_the_variable() {
    let mut node = Node::new();
    node.env
        .push(("SPACEPOS_SYNC__INGEST_FREQUENCY".into(), "-5".into()));
    let run = node.run(&["status", "--offline"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("sync.ingest_frequency"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("SPACEPOS_SYNC__INGEST_FREQUENCY"),
        "{}",
        run.stderr
    );
}

#[test]
fn plain_http_to_a_remote_erp_is_refused_with_the_file_named() {
    let node = Node::new();
    std::fs::write(
        node.file("spacepos.toml"),
        "[node]\napi_endpoint = \"http://erp.example.com\"\n",
    )
    .unwrap();
    let run = node.run(&["config", "show"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("node.api_endpoint"), "{}", run.stderr);
    assert!(
        run.stderr.contains("spacepos.toml line 2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("https://erp.example.com"),
        "says what to use: {}",
        run.stderr
    );

    let flag = node.run(&["onboard", "--api", "http://erp.example.com", "--code", "X"]);
    assert_eq!(
        flag.code, 3,
        "the config is refused before the flag is looked at: {flag:?}"
    );
}

#[test]
fn plain_http_flag_to_a_remote_erp_is_a_usage_error() {
    let node = Node::new();
    let run = node.run(&["onboard", "--api", "http://erp.example.com", "--code", "X"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--api"), "{}", run.stderr);
}

#[test]
fn damaged_state_json_is_restored_from_the_backup_with_one_warning() {
    let node = Node::new();
    node.run(&["status", "--offline"]).ok();
    let good = std::fs::read(node.file("state.json")).unwrap();
    let id: serde_json::Value = serde_json::from_slice(&good).unwrap();
    for damage in [&b""[..], &good[..good.len() / 2], &b"\x00\xffgarbage{{"[..]] {
        std::fs::write(node.file("state.json"), damage).unwrap();
        let run = node.run(&["status", "--offline", "--json"]);
        run.ok();
        let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "exactly one warning: {}", run.stderr);
        assert!(
            warnings[0].contains(&node.file("state.json").display().to_string()),
            "{}",
            warnings[0]
        );
        let restored: serde_json::Value =
            serde_json::from_slice(&std::fs::read(node.file("state.json")).unwrap()).unwrap();
        assert_eq!(
            restored["instance_id"], id["instance_id"],
            "the installation keeps its id"
        );
        let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(status["state"], "restored-from-backup");
        // The next start is quiet.
        let next = node.run(&["status", "--offline"]);
        next.ok();
        assert!(!next.stderr.contains("WARN"), "{}", next.stderr);
    }
}

#[test]
fn help_lists_exit_codes_and_usage_errors_exit_2() {
    let node = Node::new();
    let help = node.run(&["--help"]);
    help.ok();
    for needle in ["Exit codes:", "onboard", "erp-sim", "demo", "--data-dir"] {
        assert!(help.stdout.contains(needle), "{needle}: {}", help.stdout);
    }
    let bad = node.run(&["onboard", "--no-such-flag"]);
    assert_eq!(bad.code, 2);
    let not_onboarded = node.run_with_stdin(&["login", "--staff", "0042"], "1234\n");
    assert_eq!(not_onboarded.code, 4, "{not_onboarded:?}");
}

#[test]
fn the_demo_onboards_seeds_pushes_and_applies_a_live_event_through_rabbitmq() {
    let node = Node::new();
    let run = node.run(&["demo"]);
    run.ok();
    assert!(
        run.stdout.contains("[3/11] Onboarded with code"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("still verifies offline"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("[7/11] Seeded 5 datasets"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("3 done, 0 parked; the ERP holds 3 operations"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("through RabbitMQ"),
        "RabbitMQ runs on this machine for the tests: {}",
        run.stdout
    );
    for step in [
        "sha256 verified, staged; POSComponentReadyEvent queued",
        "[11/11] Sent 1 tracking event(s) and a POSPresenceEvent",
    ] {
        assert!(run.stdout.contains(step), "{step}: {}", run.stdout);
    }
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
}

#[test]
fn the_demo_without_a_broker_catches_up_through_changes() {
    let node = Node::new();
    let run = node.run(&["demo", "--no-bus"]);
    run.ok();
    assert!(
        run.stdout
            .contains("came through GET /api/pos/datasets/prices/changes"),
        "{}",
        run.stdout
    );
}

#[test]
fn status_shows_spacefuels_slots_service_and_pumps() {
    use spacepos_config::{Slot, SlotRecord, State, StateStore, SwitchRecord, SwitchStep};
    use spacepos_spacefuel::{HealthReport, Pump, PumpState};

    let node = Node::new();
    let ext = node.file("extensions").join("spacefuel");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = spacepos_fs::FileStateStore::new(node.path());
        let mut state = State::new();
        state.spacefuel.active_slot = Some(Slot::Blue);
        state.spacefuel.blue = Some(SlotRecord {
            version: "2.1.0".into(),
            verified: true,
            installed_at: chrono::Utc::now(),
        });
        state.spacefuel.green = Some(SlotRecord {
            version: "2.2.0".into(),
            verified: true,
            installed_at: chrono::Utc::now(),
        });
        state.spacefuel.switch = Some(SwitchRecord {
            from: Some(Slot::Blue),
            from_version: Some("2.1.0".into()),
            to: Slot::Green,
            to_version: "2.2.0".into(),
            step: SwitchStep::Stopping,
            started_at: chrono::Utc::now(),
            error: None,
        });
        store.save(&state).await.unwrap();
    });
    spacepos_fs::write_health_report(
        &ext,
        &HealthReport {
            slot: Slot::Blue,
            version: "2.1.0".into(),
            pid: 4242,
            ready: true,
            detail: None,
            at: chrono::Utc::now(),
            pumps: vec![
                Pump {
                    id: 1,
                    nozzles: vec![],
                    state: PumpState::Idle,
                },
                Pump {
                    id: 2,
                    nozzles: vec![],
                    state: PumpState::Fuelling {
                        nozzle: 1,
                        volume_ml: 12_500,
                        amount_minor: 2_238,
                    },
                },
            ],
            sales: vec![],
        },
    )
    .unwrap();

    let run = node.run(&["status", "--offline", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let sf = &status["spacefuel"];
    assert_eq!(sf["activeSlot"], "blue");
    assert_eq!(sf["activeVersion"], "2.1.0");
    assert_eq!(sf["blue"], "2.1.0");
    assert_eq!(sf["green"], "2.2.0");
    assert_eq!(sf["switch"], "to green 2.2.0 (stopping)");
    // No supervisor has recorded a worker: the service is not running.
    assert_eq!(sf["service"]["state"], "stopped", "{sf}");
    assert_eq!(
        sf["health"]["pumps"][1]["state"]["state"], "fuelling",
        "{sf}"
    );

    let run = node.run(&["status", "--offline"]);
    assert_eq!(run.code, 0, "{run:?}");
    for line in [
        "active slot      blue (2.1.0)",
        "slots            blue 2.1.0, green 2.2.0",
        "switch           in progress: to green 2.2.0 (stopping)",
        "service          stopped",
        "pump 1           idle",
        "pump 2           fuelling: 12500 ml, 2238 so far",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in:\n{}", run.stdout);
    }
}
