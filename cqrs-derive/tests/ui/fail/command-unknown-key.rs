// `#[command(..)]` knows only `id`.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, Command)]
enum AccountCommand {
    Open {
        #[command(key)]
        account_id: String,
    },
}

fn main() {}
