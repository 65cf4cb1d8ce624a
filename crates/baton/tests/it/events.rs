//! Live events on one node: the WebSocket (`/api/v1/ws`) and the SSE log stream, checked against
//! what SQL holds — every line once and in order, across reconnects and resume points; task
//! changes with growing versions; a slow client told to resync instead of being cut off or
//! skipped; origins and credentials checked before the upgrade; subscriptions ended when a role
//! goes. The clients are testkit's (`baton_testkit::events`); the same behaviour across nodes,
//! outages and SIGKILL is in the cluster tests.

mod sse;
mod ws;
