//! Generic functions: type and lifetime parameters, a `where` clause, `impl Trait` in argument
//! and in return position.

use std::fmt::Display;
use std::time::Duration;

use stellaops_telemetry_core::opentelemetry::Value;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, instrument, tracing};

#[instrument(span = "sign.dsse", predicateType = predicate.as_ref())]
fn sign<'a, P>(predicate: &'a P, payload: impl AsRef<[u8]>) -> impl Display + 'a
where
    P: AsRef<str> + ?Sized,
{
    format!("{}:{}", predicate.as_ref(), payload.as_ref().len())
}

#[instrument(span = "db.query", collection = C::NAME, operation = "find")]
async fn find<C: Collection>(id: u32) -> Option<C> {
    C::load(id)
}

trait Collection: Sized {
    const NAME: &'static str;
    fn load(id: u32) -> Option<Self>;
}

struct Release(u32);

impl Collection for Release {
    const NAME: &'static str = "releases";
    fn load(id: u32) -> Option<Self> {
        (id > 0).then_some(Release(id))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("signer")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        assert_eq!(sign("slsa", [1, 2, 3]).to_string(), "slsa:3");
        assert_eq!(sign(&String::from("spdx"), b"").to_string(), "spdx:0");
        let found = runtime.block_on(find::<Release>(9));
        assert_eq!(found.map(|r| r.0), Some(9));
    });

    telemetry.flush(Duration::from_secs(5))?;
    let spans = exporters.finished_spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["sign.dsse", "sign.dsse", "db.query"]);
    let attribute = |index: usize, key: &str| {
        spans[index]
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attribute(1, "predicateType"), Some(Value::from("spdx")));
    assert_eq!(attribute(2, "collection"), Some(Value::from("releases")));
    telemetry.shutdown();
    Ok(())
}
