// One field names the aggregate a command addresses.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, Command)]
enum TransferCommand {
    Transfer {
        #[command(id)]
        from: String,
        #[command(id)]
        to: String,
        amount: u64,
    },
}

fn main() {}
