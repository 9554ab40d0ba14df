//! Conversions between `SystemTime` and X.509 times, and random serial numbers.
//!
//! X.509 stores whole seconds between the years 1950 and 9999; everything that leaves this
//! crate as a `SystemTime` is truncated to the second so it equals what a parser reads back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use rcgen::SerialNumber;
use time::OffsetDateTime;

use crate::error::{CaError, Result};

/// How far in the past `not_before` (and a CRL's `this_update`) is placed, so a peer whose
/// clock runs a little behind does not reject a certificate issued a moment ago.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

fn out_of_range() -> CaError {
    CaError::InvalidValidity {
        reason: "time is outside the years 1950 to 9999",
    }
}

/// Converts to an X.509-encodable time, truncated to the second.
///
/// Refuses times outside 1950–9999: X.509 cannot encode them, and the encoder would panic.
pub(crate) fn x509_time(t: SystemTime) -> Result<OffsetDateTime> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok(),
        Err(e) => i64::try_from(e.duration().as_secs()).ok().map(|s| -s),
    };
    let dt = secs
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(out_of_range)?;
    if !(1950..=9999).contains(&dt.year()) {
        return Err(out_of_range());
    }
    Ok(dt)
}

/// Converts a Unix timestamp read from a certificate back to a `SystemTime`.
pub(crate) fn system_time(unix_secs: i64) -> Result<SystemTime> {
    let magnitude = Duration::from_secs(unix_secs.unsigned_abs());
    let t = if unix_secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    t.ok_or(CaError::InvalidValidity {
        reason: "certificate time is not representable on this platform",
    })
}

/// The validity window of a new certificate: `not_before` is [`CLOCK_SKEW`] before `now`,
/// `not_after` is `now + validity`. Both are whole seconds.
pub(crate) struct Window {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// `not_after` as a `SystemTime`, exactly as it is encoded.
    pub not_after_system: SystemTime,
}

/// Computes a validity window, refusing an empty one or one that cannot be encoded.
pub(crate) fn window(now: SystemTime, validity: Duration) -> Result<Window> {
    if validity.is_zero() {
        return Err(CaError::InvalidValidity {
            reason: "validity must be positive",
        });
    }
    let not_before = now.checked_sub(CLOCK_SKEW).ok_or_else(out_of_range)?;
    let not_after = now.checked_add(validity).ok_or(CaError::InvalidValidity {
        reason: "validity overflows",
    })?;
    let not_after = x509_time(not_after)?;
    Ok(Window {
        not_before: x509_time(not_before)?,
        not_after_system: system_time(not_after.unix_timestamp())?,
        not_after,
    })
}

/// A fresh random serial number and its hex form.
///
/// 16 random bytes with the top bit cleared and the next one set, so the DER integer is
/// positive, minimal and always exactly 16 bytes: the hex here is then byte-for-byte what
/// a parser reads back and what a CRL entry must carry. That leaves 126 random bits, far
/// above the 64 that CA/Browser-Forum rules ask for.
pub(crate) fn random_serial() -> (SerialNumber, String) {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    (SerialNumber::from_slice(&bytes), hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_outside_x509_range_are_refused_not_panicking() {
        let far = UNIX_EPOCH + Duration::from_secs(400 * 365 * 86_400 * 30);
        assert!(x509_time(far).is_err());
        let early = UNIX_EPOCH - Duration::from_secs(30 * 365 * 86_400);
        assert!(x509_time(early).is_err());
        assert!(window(UNIX_EPOCH + Duration::from_secs(1), Duration::ZERO).is_err());
        assert!(window(SystemTime::now(), Duration::MAX).is_err());
    }

    #[test]
    fn window_is_whole_seconds_and_round_trips() {
        let now = UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789);
        let w = window(now, Duration::from_secs(3600)).unwrap();
        assert_eq!(
            w.not_after_system,
            UNIX_EPOCH + Duration::from_secs(1_800_003_600)
        );
        assert_eq!(w.not_before.unix_timestamp(), 1_800_000_000 - 60);
        assert_eq!(
            system_time(-5).unwrap(),
            UNIX_EPOCH - Duration::from_secs(5)
        );
    }

    #[test]
    fn serials_are_positive_sixteen_bytes() {
        let (serial, hex) = random_serial();
        assert_eq!(serial.len(), 16);
        assert_eq!(hex.len(), 32);
        assert!(serial.to_bytes()[0] & 0x80 == 0 && serial.to_bytes()[0] & 0x40 != 0);
    }
}
