//! The `log` import: a guest's line becomes a `tracing` event that names its database.
//!
//! A test binary of its own, since it installs the process's global subscriber.

use std::fmt;
use std::sync::{Arc, Mutex};

use corelane_executor::Runtime;
use corelane_host::{DatabaseOptions, Host};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A guest line as the subscriber saw it: its database, level and text.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    database: String,
    level: tracing::Level,
    text: String,
}

/// Keeps every event of the guests' target.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Line>>>);

#[derive(Default)]
struct Fields {
    database: String,
    text: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "database" {
            self.database = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.text = format!("{value:?}");
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "corelane::guest"
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.lock().unwrap().push(Line {
            database: fields.database,
            level: *event.metadata().level(),
            text: fields.text,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[test]
fn a_guest_log_line_names_its_database() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).expect("the only subscriber");

    let host = Host::builder()
        .runtime(Runtime::builder().workers(1))
        .build()
        .expect("a host");
    let wasm = corelane_modules::wasm("echo").expect("a sample");
    let module = host.compile("echo", &wasm).expect("compiles");
    for name in ["north", "south"] {
        let db = host
            .create_database(name, &module, DatabaseOptions::default())
            .expect("a database");
        let said = format!("hello from {name}");
        assert_eq!(db.call_blocking("log", said.as_bytes()).expect("logs"), b"");
    }

    let lines = capture.0.lock().unwrap();
    let expected: Vec<Line> = ["north", "south"]
        .into_iter()
        .map(|name| Line {
            database: name.to_owned(),
            level: tracing::Level::INFO,
            text: format!("hello from {name}"),
        })
        .collect();
    assert_eq!(*lines, expected);
}
