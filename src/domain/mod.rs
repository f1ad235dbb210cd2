//! The domain: types and rules with no IO. Identifiers and free text are
//! parsed here once ([`ids`], [`text`]); staff, tenants and grants are
//! plain records, grants with their state machine ([`grant`]); [`event`]
//! names what the log records.
//!
//! Not here: storage ([`crate::ledger`]), use cases ([`crate::service`]),
//! who may do what ([`crate::policy`]).

pub mod access_limit;
pub mod alert;
pub mod event;
pub mod grant;
pub mod group;
pub mod ids;
pub mod incident;
pub mod justification;
pub mod location;
pub mod processing;
pub mod review;
pub mod screen;
pub mod staff;
pub mod tenant;
pub mod text;

pub use self::grant::{Scope, ScopedResource, Scopes};
pub use self::{
    access_limit::{AccessLimit, LimitExceeded},
    alert::{Alert, AlertId, AlertState, Finding, Rule, Severity},
    event::{Draft, EventKind, detail},
    grant::{DenyReason, Grant, GrantState, MAX_GRANT_SECS},
    group::{ApproverGroup, GroupRule},
    ids::{Actor, GrantId, Name, Principal, PrincipalKind, ReportId},
    incident::{IncidentId, IncidentReport, IncidentUpdate, Notification},
    justification::{Justification, ReasonCode, TicketPattern},
    location::{Country, Location, Organisation, Subprocessor},
    processing::ProcessingRecord,
    review::{GrantReview, ReviewNote, ReviewVerdict},
    screen::{ScreenRecord, ScreenRefusal, SessionCookie},
    staff::{Declaration, Role, StaffRecord},
    tenant::{Approval, GrantApproval, TenantRecord},
    text::{AccessAction, Note, Reason, Resource, Ticket, truncate},
};
