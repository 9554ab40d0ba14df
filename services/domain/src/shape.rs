//! Machine shapes: the fixed resource sizes a service replica can have (DESIGN §5).

use serde::{Deserialize, Serialize};

/// The resources each replica of a service gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shape {
    /// 0.25 vCPU, 512 MiB.
    Flx,
    /// 1 vCPU, 2 GiB.
    Max,
    /// 2 vCPU, 4 GiB.
    Pwr,
}

impl Shape {
    /// CPU per replica in millicores.
    pub fn cpu_millis(self) -> u32 {
        match self {
            Self::Flx => 250,
            Self::Max => 1000,
            Self::Pwr => 2000,
        }
    }

    /// Memory per replica in MiB.
    pub fn memory_mib(self) -> u32 {
        match self {
            Self::Flx => 512,
            Self::Max => 2048,
            Self::Pwr => 4096,
        }
    }

    /// Stable lowercase name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flx => "flx",
            Self::Max => "max",
            Self::Pwr => "pwr",
        }
    }

    /// Inverse of [`Shape::as_str`].
    pub fn from_str_opt(s: &str) -> Option<Self> {
        match s {
            "flx" => Some(Self::Flx),
            "max" => Some(Self::Max),
            "pwr" => Some(Self::Pwr),
            _ => None,
        }
    }
}
