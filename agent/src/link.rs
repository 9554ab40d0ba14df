//! The agent's side of the link: enrollment, the mutual-TLS channel, and the attach stream.

pub mod channel;
pub mod enroll;
pub mod stream;
