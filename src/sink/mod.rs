//! Output writers. Each format owns its wire types here; the event and
//! session types stay free of serialisation concerns.

pub mod auth_event;
pub mod background;
pub mod cef;
pub mod ecs;
pub(crate) mod json;
pub mod jsonl;
pub mod ocsf;
pub mod sessions;
pub mod summary;
pub mod table;
