// An aggregate with no commands and no events yet compiles: there is nothing to serve.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum NothingHappened {}

#[derive(Debug, Clone, PartialEq, Command)]
enum NoCommand {}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Debug, Default, Aggregate)]
#[aggregate(command = NoCommand, event = NothingHappened, error = Never)]
struct Placeholder;

#[aggregate_impl]
impl Placeholder {}

fn main() {}
