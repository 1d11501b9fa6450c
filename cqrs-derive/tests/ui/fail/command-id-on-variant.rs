// `#[command(id)]` goes on the field that names the aggregate, not on the variant.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, Command)]
enum AccountCommand {
    #[command(id)]
    Open { account_id: String },
}

fn main() {}
