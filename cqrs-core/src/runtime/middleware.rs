//! Middleware: code that runs around every command (authorization, validation, auditing).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use crate::aggregate::Aggregate;
use crate::event::Metadata;
use crate::runtime::CommandResult;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A command on its way to an aggregate, as middleware sees it.
#[derive(Debug, Clone)]
pub struct CommandRequest<A: Aggregate> {
    /// The id of the aggregate instance.
    pub aggregate_id: String,
    /// The command.
    pub command: A::Command,
    /// Metadata given to every event the command produces.
    pub metadata: Metadata,
}

/// Runs around every command of one aggregate type. Call `next.run(request)` to go on;
/// return early to stop the command, change the request, or look at the result.
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_core::runtime::{CommandRequest, Middleware, Next};
///
/// /// Refuses commands that carry no actor.
/// struct RequireActor;
///
/// #[cqrs_core::async_trait]
/// impl<A: Aggregate> Middleware<A> for RequireActor {
///     async fn call(&self, request: CommandRequest<A>, next: Next<'_, A>) -> CommandResult<A> {
///         if request.metadata.actor.is_none() {
///             return Err(CommandError::Refused("an actor is required".into()));
///         }
///         next.run(request).await
///     }
/// }
/// ```
#[async_trait]
pub trait Middleware<A: Aggregate>: Send + Sync + 'static {
    /// Handles one command; `next` runs the rest of the chain and then the command.
    async fn call(&self, request: CommandRequest<A>, next: Next<'_, A>) -> CommandResult<A>;
}

/// The command pipeline after this middleware.
pub(crate) trait Core<A: Aggregate>: Send + Sync {
    fn run(&self, request: CommandRequest<A>) -> BoxFuture<'_, CommandResult<A>>;
}

/// The rest of the middleware chain, ending in the command itself.
pub struct Next<'a, A: Aggregate> {
    pub(crate) rest: &'a [Arc<dyn Middleware<A>>],
    pub(crate) core: &'a dyn Core<A>,
}

impl<A: Aggregate> Next<'_, A> {
    /// Passes the request on.
    pub async fn run(self, request: CommandRequest<A>) -> CommandResult<A> {
        match self.rest.split_first() {
            Some((first, rest)) => {
                first
                    .call(
                        request,
                        Next {
                            rest,
                            core: self.core,
                        },
                    )
                    .await
            }
            None => self.core.run(request).await,
        }
    }
}
