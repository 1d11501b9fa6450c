//! Every command runs in a tracing span. (Its own test binary: tracing caches callsite
//! interest process-wide, so tests without a subscriber must not run beside it.)

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use cqrs_core::prelude::*;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<String>>>);

struct Fields(String);
impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut fields = Fields(attrs.metadata().name().to_owned());
        attrs.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
}

#[test]
fn every_command_runs_in_a_span_naming_aggregate_id_and_command() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cqrs = Cqrs::<Tally>::builder(InMemoryEventStore::new()).build();
            cqrs.execute("t-1", add(1)).await.unwrap();
        });
    });
    assert_eq!(
        *spans.0.lock().unwrap(),
        ["cqrs.command aggregate=Tally aggregate_id=t-1 command=Add"]
    );
}
