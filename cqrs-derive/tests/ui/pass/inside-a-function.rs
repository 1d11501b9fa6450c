// Everything inside a function body, as in a doctest: the generated items stay local.
fn main() {
    use cqrs_core::prelude::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
    enum DoorEvent {
        Opened,
        Closed,
    }

    #[derive(Debug, Clone, PartialEq, Command)]
    enum DoorCommand {
        Open,
        Close,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the door is stuck")]
    struct Stuck;

    #[derive(Debug, Default, Aggregate)]
    #[aggregate(command = DoorCommand, event = DoorEvent, error = Stuck)]
    struct Door {
        open: bool,
    }

    #[aggregate_impl]
    impl Door {
        #[handle]
        fn open(&self) -> Result<DoorEvent, Stuck> {
            Ok(DoorEvent::Opened)
        }

        #[handle]
        fn close(&self) -> Option<DoorEvent> {
            self.open.then_some(DoorEvent::Closed)
        }

        #[apply]
        fn opened(&mut self) {
            self.open = true;
        }

        #[apply]
        fn closed(&mut self) {
            self.open = false;
        }
    }

    let mut door = Door::default();
    door.apply(&DoorEvent::Opened);
    assert!(door.open);
}
