//! Time, injected: the clock lives in the tenant library
//! ([`daypass_tenant::clock`]) so the broker and the tenants' verifiers
//! share one notion of time (and tests move both with one `ManualClock`).

pub use daypass_tenant::clock::*;
