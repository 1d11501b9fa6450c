// `#[derive(Command)]` applies to an enum, one variant per command.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, Command)]
struct Increment {
    by: u32,
}

fn main() {}
