//! The JetStream streams that more than one component creates when it finds them missing, defined
//! once so that whoever creates one creates the same stream (docs/architecture.md, "NATS").

use crate::subjects::{STREAM_AUDIT, STREAM_AUDIT_SUBJECTS};

/// The audit anchors' stream: the last anchor of each team (a newer one replaces it),
/// deduplicated by `<subject>/<head>` over the server's default two minutes. Direct gets are
/// allowed: a team reads its last anchor with the subject in the request's subject, the only form
/// a grant can hold to the team's subject (`crate::nats_auth::anchor_get`). The coordinator
/// creates it, and the operator when it consumes a team whose coordinator has not yet.
pub fn audit_stream() -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: STREAM_AUDIT.to_string(),
        subjects: STREAM_AUDIT_SUBJECTS.map(String::from).to_vec(),
        max_messages_per_subject: 1,
        discard: async_nats::jetstream::stream::DiscardPolicy::Old,
        allow_direct: true,
        ..Default::default()
    }
}
