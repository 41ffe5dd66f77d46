//! The Alertmanager configuration that routes the generated alerts: `critical` to a pager
//! receiver, everything else to a chat receiver, grouped by alert, service and tenant, with
//! a critical alert silencing the same alert's warning.

use super::yaml::{MapBuilder, Yaml, document, s};
use super::{Artefact, ArtefactKind, generated_notice};

/// The file name of the Alertmanager configuration.
pub const ALERTMANAGER_FILE: &str = "alertmanager.yaml";

/// The labels alerts are grouped by, and that a critical alert must share with a warning to
/// silence it.
pub const GROUP_BY: [&str; 3] = ["alertname", "service", "tenant"];

/// The placeholder URL of the pager receiver (a host under `.invalid` never resolves).
pub const PAGER_URL: &str = "https://pager.example.invalid/stellaops/alertmanager";

/// The placeholder URL of the chat receiver (a host under `.invalid` never resolves).
pub const CHAT_URL: &str = "https://chat.example.invalid/stellaops/alertmanager";

fn labels(names: &[&str]) -> Yaml {
    Yaml::Seq(names.iter().map(|n| s(*n)).collect())
}

fn receiver(name: &str, url: &str) -> Yaml {
    MapBuilder::new()
        .str("name", name)
        .entry(
            "webhook_configs",
            Yaml::Seq(vec![
                MapBuilder::new()
                    .str("url", url)
                    .raw("send_resolved", true)
                    .build(),
            ]),
        )
        .build()
}

/// The Alertmanager configuration ([`ALERTMANAGER_FILE`]): alerts with `severity="critical"`
/// go to the `pager` receiver (repeated every hour), `severity="warning"` ones and every other
/// alert to the `chat` receiver (every 4 hours); both are webhooks to placeholder URLs
/// ([`PAGER_URL`], [`CHAT_URL`]) with `send_resolved: true`. Alerts are grouped by
/// [`GROUP_BY`], and a firing critical alert inhibits the warning of the same alert name,
/// service and tenant.
///
/// ```
/// let am = stellaops_telemetry_core::artefacts::alertmanager();
/// assert!(am.contents.contains("send_resolved: true"));
/// ```
pub fn alertmanager() -> Artefact {
    let route = MapBuilder::new()
        .str("receiver", "chat")
        .entry("group_by", labels(&GROUP_BY))
        .str("group_wait", "30s")
        .str("group_interval", "5m")
        .str("repeat_interval", "4h")
        .entry(
            "routes",
            Yaml::Seq(vec![
                MapBuilder::new()
                    .str("receiver", "pager")
                    .entry("matchers", labels(&["severity=\"critical\""]))
                    .str("group_wait", "10s")
                    .str("repeat_interval", "1h")
                    .build(),
                MapBuilder::new()
                    .str("receiver", "chat")
                    .entry("matchers", labels(&["severity=\"warning\""]))
                    .build(),
            ]),
        )
        .build();
    let inhibit = MapBuilder::new()
        .commented(
            &["A firing critical alert silences the warning of the same alert, service and tenant."],
            "source_matchers",
            labels(&["severity=\"critical\""]),
        )
        .entry("target_matchers", labels(&["severity=\"warning\""]))
        .entry("equal", labels(&GROUP_BY))
        .build();
    let doc = MapBuilder::new()
        .commented(
            &["critical -> pager; warning (and anything else, such as info) -> chat."],
            "route",
            route,
        )
        .commented(
            &["Placeholder webhooks: replace the URLs (hosts under .invalid never resolve)."],
            "receivers",
            Yaml::Seq(vec![
                receiver("pager", PAGER_URL),
                receiver("chat", CHAT_URL),
            ]),
        )
        .entry("inhibit_rules", Yaml::Seq(vec![inhibit]))
        .build();
    let header = [
        generated_notice("generate alertmanager", "the alert severities"),
        "Routes the generated alerts; check with `amtool check-config alertmanager.yaml`."
            .to_owned(),
    ];
    Artefact {
        kind: ArtefactKind::Alertmanager,
        file_name: ALERTMANAGER_FILE.to_owned(),
        contents: document(&header, &doc),
    }
}
