//! A configuration read from a list of variables instead of the process environment.

use std::collections::BTreeMap;

use stellaops_telemetry_core::TelemetryConfig;

/// `TelemetryConfig::from_lookup` over `vars`; panics (in tests) when a value is malformed.
pub fn env_config<V: AsRef<str>>(vars: &[(&str, V)]) -> TelemetryConfig {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_ref().to_owned()))
        .collect();
    TelemetryConfig::from_lookup(|k| map.get(k).cloned()).unwrap()
}
