//! APPEND.

use super::*;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn append(
        &mut self,
        mailbox: &Mailbox<'_>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        bytes: Vec<u8>,
    ) -> Result<Done> {
        let user = self.user()?;
        let name = mailbox_name(mailbox);
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let when = date.map_or_else(
            || chrono::Utc::now().timestamp(),
            |d| d.as_ref().timestamp(),
        );
        let (u, f) = (user.clone(), name.clone());
        let delivered = self
            .config
            .store(move |s| s.deliver(&u, &f, &bytes, &flags, when))
            .await?;
        self.config.notifier.changed(&user, &delivered.folder);
        Ok(Done::ok_code(
            Code::AppendUid {
                uid_validity: nz(delivered.uidvalidity)?,
                uid: nz(delivered.uid)?,
            },
            "APPEND completed",
        ))
    }
}
