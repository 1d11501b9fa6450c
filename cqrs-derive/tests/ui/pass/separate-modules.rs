// The enums, the aggregate and its `#[aggregate_impl]` block may live in different modules.
mod events {
    use cqrs_core::prelude::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
    pub enum LampEvent {
        SwitchedOn { watts: u32 },
        SwitchedOff,
    }
}

mod commands {
    use cqrs_core::prelude::*;

    #[derive(Debug, Clone, PartialEq, Command)]
    pub enum LampCommand {
        SwitchOn {
            #[command(id)]
            lamp: String,
            watts: u32,
        },
        SwitchOff(#[command(id)] String),
    }
}

mod lamp {
    use cqrs_core::prelude::*;

    use crate::commands::LampCommand;
    use crate::events::LampEvent;

    #[derive(Debug, thiserror::Error)]
    #[error("the lamp is broken")]
    pub struct Broken;

    #[derive(Debug, Default, Aggregate)]
    #[aggregate(command = LampCommand, event = LampEvent, error = Broken)]
    pub struct Lamp {
        pub watts: u32,
    }
}

mod behaviour {
    use crate::events::LampEvent;
    use crate::lamp::{Broken, Lamp};
    use cqrs_core::aggregate_impl;

    #[aggregate_impl]
    impl Lamp {
        #[handle]
        fn switch_on(&self, lamp: String, watts: u32) -> Result<LampEvent, Broken> {
            let _ = lamp;
            Ok(LampEvent::SwitchedOn { watts })
        }

        #[handle]
        fn switch_off(&self, _0: String) -> LampEvent {
            LampEvent::SwitchedOff
        }

        #[apply]
        fn switched_on(&mut self, watts: &u32) {
            self.watts = *watts;
        }

        #[apply]
        fn switched_off(&mut self) {
            self.watts = 0;
        }
    }
}

fn main() {
    use cqrs_core::Command;
    let cmd = commands::LampCommand::SwitchOff("l-1".into());
    assert_eq!(cmd.aggregate_id().as_deref(), Some("l-1"));
    assert_eq!(lamp::Lamp::default().watts, 0);
}
