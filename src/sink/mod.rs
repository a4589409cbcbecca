//! Output writers. Each format owns its wire types here; the event and
//! session types stay free of serialisation concerns.

pub mod jsonl;
pub mod sessions;
pub mod summary;
pub mod table;
