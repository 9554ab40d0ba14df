//! The agent's side of the link: enrollment, the mutual-TLS channel, the attach stream, and
//! the log requests it carries.

pub mod channel;
pub mod enroll;
pub mod logs;
pub mod stream;
