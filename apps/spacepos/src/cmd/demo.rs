//! `spacepos demo`: a terminal onboards against the built-in ERP simulator, step by step.

use spacepos_auth::SessionStatus;
use spacepos_core::Secret;
use spacepos_fake_erp::{FakeErp, FakeErpConfig, Route};
use url::Url;

use crate::cli::DemoArgs;
use crate::exit::{CliError, Kind};
use crate::node::Node;

const STEPS: usize = 6;

fn step(n: usize, text: impl AsRef<str>) {
    println!("[{n}/{STEPS}] {}", text.as_ref());
}

fn detail(text: impl AsRef<str>) {
    println!("      {}", text.as_ref());
}

pub(crate) async fn run(args: DemoArgs, data_dir: &tempfile::TempDir) -> Result<(), CliError> {
    println!("SpacePOS demo: a terminal onboards against the built-in ERP simulator.\n");

    let config = FakeErpConfig::demo();
    let erp = FakeErp::start(config.clone()).await.map_err(|e| {
        CliError::new(
            Kind::Internal,
            format!("cannot start the ERP simulator: {e}"),
        )
    })?;
    let result = steps(&erp, &config, data_dir).await;
    erp.shutdown().await;
    result?;

    if args.keep {
        println!(
            "\nThe data directory is kept: {}",
            data_dir.path().display()
        );
        println!(
            "Look around with: spacepos --data-dir {} status --offline",
            data_dir.path().display()
        );
    } else {
        println!("\nThe temporary data directory is removed (use --keep to keep it).");
    }
    Ok(())
}

async fn steps(
    erp: &FakeErp,
    config: &FakeErpConfig,
    data_dir: &tempfile::TempDir,
) -> Result<(), CliError> {
    step(
        1,
        format!(
            "Started the ERP simulator at {} ({} datasets, {} onboarding codes, {} staff accounts)",
            erp.base_url(),
            config.datasets.len(),
            config.onboarding_codes.len(),
            config.staff.len()
        ),
    );

    let node = Node::isolated(data_dir.path());
    step(
        2,
        format!(
            "Using a temporary data directory: {}",
            node.data_dir.display()
        ),
    );

    let code = config
        .onboarding_codes
        .last()
        .map(|c| c.code.clone())
        .ok_or_else(|| CliError::new(Kind::Internal, "the demo data has no onboarding code"))?;
    let api =
        Url::parse(erp.base_url()).map_err(|e| CliError::new(Kind::Internal, e.to_string()))?;
    let node_config = node.config(None)?;
    let record = super::onboard::onboard(&node, &node_config, &api, &code, false).await?;
    step(
        3,
        format!(
            "Onboarded with code {code}: client {}, store {}, terminal {}{}",
            record.client_id,
            record.store_number,
            record.terminal_number,
            record
                .company_information
                .as_ref()
                .and_then(|c| c.name.as_deref())
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
    );
    detail(format!(
        "credentials, identity and endpoints saved in one step to {}",
        node.terminal.path().display()
    ));
    detail(format!(
        "file mode {}; the client secret is never printed",
        mode_of(node.terminal.path())
    ));

    let status = super::status::collect(&node, false).await?;
    step(
        4,
        format!(
            "Read this terminal's settings from the ERP (GET /api/pos/terminals/me): {}",
            status.erp_summary()
        ),
    );
    if let Some(t) = &status.terminal {
        detail(format!(
            "presence {}, every {} s; ERP {}",
            if t.report_presence { "on" } else { "off" },
            t.presence_interval_seconds,
            t.api_endpoint.as_deref().unwrap_or("?")
        ));
    }

    let staff = config
        .staff
        .first()
        .ok_or_else(|| CliError::new(Kind::Internal, "the demo data has no staff account"))?;
    let session =
        super::login::login(&node, &staff.staff_code, &Secret::new(staff.pin.expose())).await?;
    step(
        5,
        format!(
            "Logged in staff {} as {}: the access token verified against the ERP's keys (valid until {})",
            staff.staff_code,
            session.store_staff_id,
            session.expires_at.format("%H:%M UTC")
        ),
    );

    erp.pause().await;
    let sessions = super::login::sessions(&node).await?;
    let offline = sessions.current().await?;
    erp.resume().await.map_err(|e| {
        CliError::new(
            Kind::Internal,
            format!("cannot restart the ERP simulator: {e}"),
        )
    })?;
    match offline {
        SessionStatus::Active(s) => step(
            6,
            format!(
                "Stopped the ERP: the staff session of {} still verifies offline, with the cached keys",
                s.store_staff_id
            ),
        ),
        other => {
            return Err(CliError::new(
                Kind::Internal,
                format!("the session did not survive the ERP outage: {other:?}"),
            ));
        }
    }

    let device_calls: Vec<_> = erp
        .requests()
        .into_iter()
        .filter(|r| r.route != Some(Route::Onboard))
        .collect();
    let with_headers = device_calls
        .iter()
        .filter(|r| {
            ["x-client-id", "x-client-secret", "x-terminal"]
                .iter()
                .all(|h| r.header(h).is_some())
                && r.header("user-agent")
                    .is_some_and(|ua| ua.starts_with("SpacePOS/"))
        })
        .count();
    println!(
        "\nDone. The ERP recorded {} device calls; {} carried X-Client-Id, X-Client-Secret, X-Terminal and a User-Agent.",
        device_calls.len(),
        with_headers
    );
    Ok(())
}

fn mode_of(path: &std::path::Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) => format!("{:03o}, owner only", m.permissions().mode() & 0o777),
            Err(e) => format!("unknown ({e})"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        "protected by the data directory's ACL".to_owned()
    }
}
