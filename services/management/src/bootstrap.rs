//! The first start: with no platform admin yet, create `users/admin` and a token for it,
//! show the token once and save it (mode 0600) so the operator can read it later.

use std::{io::Write, path::Path};

use outpost_domain::{ApiTokenName, Timestamp, UserName};
use outpost_store::{Store, StoreError, prelude::*};

use crate::auth::new_token;

/// Name of the file under the data dir that holds the bootstrap token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Lifetime of the bootstrap token: long enough to set up real admins with it.
const BOOTSTRAP_TTL_MS: i64 = 365 * 24 * 3600 * 1000;

/// Creates the first platform admin if there is none and returns its token; `None` when an
/// admin exists already (this or another instance on the same database made it).
pub async fn ensure_admin(store: &Store, data_dir: &Path) -> anyhow::Result<Option<String>> {
    let existing = store
        .reader()
        .await?
        .user_list(
            None,
            &outpost_store::PageRequest {
                after: None,
                limit: 1,
            },
        )
        .await?;
    if !existing.items.is_empty() {
        return Ok(None);
    }
    let admin = UserName {
        tenant: None,
        user: "admin".into(),
    };
    let (token, hash) = new_token();
    let mut tx = store.begin().await?;
    match tx
        .user_create(&admin, "Bootstrap admin", "", "system")
        .await
    {
        Ok(_) => {}
        // Another instance sharing the database won the race.
        Err(StoreError::AlreadyExists { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let name = ApiTokenName {
        user: admin,
        api_token: "bootstrap".into(),
    };
    let expire = Timestamp(outpost_domain::Timestamp::now().0 + BOOTSTRAP_TTL_MS);
    tx.api_token_create(&name, "bootstrap token", &hash, expire, "system")
        .await?;
    write_secret_file(&data_dir.join(ADMIN_TOKEN_FILE), &token)?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Writes `content` to a new file readable only by its owner.
pub(crate) fn write_secret_file(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}
