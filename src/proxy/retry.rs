//! The one place that decides what happens after an upstream failure
//! (SPEC §4 "Replay rules", RFC 9110 §9.2.2).
//!
//! A request may be sent again only if it provably never left the daemon,
//! or if its method is idempotent and its body was buffered — and never to
//! a new instance more than once. A failure on a pooled connection is first
//! retried once on a fresh connection to the same container: a keep-alive
//! connection the container (or something between) closed is not a dead
//! container. Only an unreachable address, or the engine saying the
//! container is not running, means gone.

use http::StatusCode;

use super::upstream::{UpstreamError, UpstreamFailure};

/// What has been tried for one request.
#[derive(Debug, Default)]
pub struct Attempts {
    fresh_connection: bool,
    new_instance: bool,
}

/// What to do after a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send again on a fresh connection to the same container.
    FreshConnection,
    /// Ask the engine whether the container runs: if it does, the failure is
    /// the service's (502); if not, forget the instance and, when
    /// `may_replay`, send the request to a new one.
    AskEngine { may_replay: bool },
    /// Answer the client with this status.
    Fail(StatusCode),
}

/// Decides the next step. `replayable`: the method is idempotent and the
/// body was buffered. Records the attempt it allows in `attempts`.
pub fn after_failure(err: &UpstreamError, replayable: bool, attempts: &mut Attempts) -> Next {
    if let UpstreamFailure::ResponseTimeout(_) = err.failure {
        return Next::Fail(StatusCode::GATEWAY_TIMEOUT);
    }
    let safe_to_resend = !err.sent || replayable;
    if err.reused && safe_to_resend && !attempts.fresh_connection {
        attempts.fresh_connection = true;
        return Next::FreshConnection;
    }
    let may_replay = safe_to_resend && !attempts.new_instance;
    if may_replay {
        attempts.new_instance = true;
    }
    Next::AskEngine { may_replay }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_refused() -> UpstreamError {
        UpstreamError {
            failure: UpstreamFailure::Connect {
                addr: ([10, 0, 0, 1], 80).into(),
                message: "refused".into(),
            },
            sent: false,
            reused: false,
            request: None,
        }
    }

    fn reset_after_send(reused: bool) -> UpstreamError {
        UpstreamError {
            failure: UpstreamFailure::ResponseTimeout(std::time::Duration::ZERO),
            sent: true,
            reused,
            request: None,
        }
    }

    /// A sent request on a connection that failed (the failure kind does
    /// not matter to the decision beyond a response timeout).
    fn sent(reused: bool) -> UpstreamError {
        let mut e = connect_refused();
        e.sent = true;
        e.reused = reused;
        e
    }

    #[test]
    fn a_sent_post_is_never_sent_again() {
        let mut a = Attempts::default();
        assert_eq!(
            after_failure(&sent(true), false, &mut a),
            Next::AskEngine { may_replay: false }
        );
        let mut a = Attempts::default();
        assert_eq!(
            after_failure(&sent(false), false, &mut a),
            Next::AskEngine { may_replay: false }
        );
    }

    #[test]
    fn an_idempotent_buffered_request_tries_a_fresh_connection_then_one_new_instance() {
        let mut a = Attempts::default();
        assert_eq!(after_failure(&sent(true), true, &mut a), Next::FreshConnection);
        assert_eq!(
            after_failure(&sent(false), true, &mut a),
            Next::AskEngine { may_replay: true }
        );
        assert_eq!(
            after_failure(&sent(true), true, &mut a),
            Next::AskEngine { may_replay: false }
        );
    }

    #[test]
    fn a_request_that_never_left_may_go_to_a_new_instance_whatever_its_method() {
        let mut a = Attempts::default();
        assert_eq!(
            after_failure(&connect_refused(), false, &mut a),
            Next::AskEngine { may_replay: true }
        );
        assert_eq!(
            after_failure(&connect_refused(), false, &mut a),
            Next::AskEngine { may_replay: false }
        );
    }

    #[test]
    fn a_response_timeout_is_not_retried() {
        let mut a = Attempts::default();
        assert_eq!(
            after_failure(&reset_after_send(true), true, &mut a),
            Next::Fail(StatusCode::GATEWAY_TIMEOUT)
        );
    }
}
