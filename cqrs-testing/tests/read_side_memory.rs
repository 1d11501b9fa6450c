//! The in-memory store passes the read-side conformance suite.

use cqrs_core::store::InMemoryEventStore;

cqrs_testing::read_side_conformance!(memory, || async { Some((InMemoryEventStore::new(), ())) });
