//! Commands to their handlers, by state (any, authenticated, selected), and the end of every command: refusals mapped, pending changes announced, the tagged reply.

use super::notify::Moment;
use super::store::StoreRequest;
use super::*;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn command(&mut self, command: Command<'static>) -> Result<Flow> {
        let Command { tag, body } = command;
        let name = body.name();
        tracing::debug!(command = name, user = ?self.user, "imap command");
        let result = match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.data(Data::Capability(caps));
                Ok(Done::ok("CAPABILITY completed"))
            }
            CommandBody::Noop | CommandBody::Check => {
                // Everything is reported at the end of the command, changes or not.
                self.untold_news = false;
                if let Some(sel) = self.selected.as_mut() {
                    sel.stale = true;
                }
                Ok(Done::ok("NOOP completed"))
            }
            CommandBody::Logout => {
                self.bye("Logging out")?;
                self.tagged(tag, Done::ok("LOGOUT completed"))?;
                return Ok(Flow::Close);
            }
            CommandBody::StartTLS => return self.starttls(tag).await,
            CommandBody::Id { .. } => Ok(self.id_reply()),
            CommandBody::Enable { capabilities } if self.user.is_some() => {
                self.enable(capabilities.as_ref()).await
            }
            CommandBody::Login { username, password } if self.user.is_none() => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                return self.login(tag, user, pass).await;
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } if self.user.is_none() => {
                return self
                    .authenticate(
                        tag,
                        mechanism,
                        initial_response.map(|r| r.declassify().to_vec()),
                    )
                    .await;
            }
            CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                Ok(Done::bad("Already authenticated"))
            }
            _ if self.user.is_none() => Ok(Done::no("Log in first")),
            other => self.authenticated(&tag, other).await,
        };
        self.finish(tag, name, result).await?;
        Ok(Flow::Continue)
    }

    /// ENABLE (RFC 5161) of CONDSTORE and QRESYNC (which implies CONDSTORE); a folder
    /// selected when CONDSTORE comes on gets its HIGHESTMODSEQ (RFC 7162 3.1).
    pub(super) async fn enable(&mut self, asked: &[CapabilityEnable<'static>]) -> Result<Done> {
        let mut enabled = Vec::new();
        for c in asked {
            let qresync = c.to_string().eq_ignore_ascii_case("QRESYNC");
            if !(qresync || matches!(c, CapabilityEnable::CondStore)) || enabled.contains(c) {
                continue;
            }
            self.condstore_on().await?;
            self.qresync |= qresync;
            enabled.push(c.clone());
        }
        self.data(Data::Enabled {
            capabilities: enabled,
        });
        Ok(Done::ok("ENABLE completed"))
    }

    /// Turns CONDSTORE on, as ENABLE or a CONDSTORE enabling command does (FETCH MODSEQ
    /// or CHANGEDSINCE, SEARCH MODSEQ, STORE UNCHANGEDSINCE); the first time, a folder
    /// already selected gets its HIGHESTMODSEQ (RFC 7162 3.1).
    pub(super) async fn condstore_on(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.condstore, true) {
            return Ok(());
        }
        if let Some(name) = self.selected.as_ref().map(|s| s.name.clone())
            && let Some(h) = NonZeroU64::new(self.folder_state(&name).await?.highestmodseq)
        {
            self.untagged(StatusKind::Ok, Some(Code::HighestModSeq(h)), "Highest")?;
        }
        Ok(())
    }

    /// Ends command `name`: store refusals become NO, what changed is told as far as
    /// the command allows, then the tagged response.
    pub(super) async fn finish(
        &mut self,
        tag: Tag<'static>,
        name: &str,
        result: Result<Done>,
    ) -> Result<()> {
        let done = match result {
            Ok(done) => done,
            Err(Error::Store(e)) => store_refusal(&e),
            Err(e) => return Err(e),
        };
        // FETCH, STORE and SEARCH must not announce expunges (RFC 3501 7.4.1), nor SORT
        // and THREAD, which answer with sequence numbers as SEARCH does.
        let expunges = !matches!(name, "FETCH" | "STORE" | "SEARCH" | "SORT" | "THREAD");
        let arrived = self.news(Moment::CommandEnd { expunges }).await?;
        if !arrived.is_empty() && !matches!(name, "NOOP" | "CHECK" | "IDLE") {
            self.untold_news = true;
        }
        self.tagged(tag, done)
    }

    pub(super) async fn authenticated(
        &mut self,
        tag: &Tag<'static>,
        body: CommandBody<'static>,
    ) -> Result<Done> {
        let user = self.user()?;
        if let Some(done) = archive::rule(&body, self.selected.as_ref()) {
            return Ok(done);
        }
        match body {
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(&mailbox, false, &parameters).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(&mailbox, true, &parameters).await,
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&ListOptions::plain(&reference, &mailbox_wildcard), false)
                    .await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&ListOptions::plain(&reference, &mailbox_wildcard), true)
                    .await
            }
            CommandBody::Namespace => {
                let personal = vec![Namespace {
                    prefix: mime::istring(""),
                    delimiter: Some(QuotedChar::unvalidated('/')),
                    extensions: Vec::new(),
                }];
                self.data(Data::Namespace {
                    personal,
                    other: Vec::new(),
                    shared: Vec::new(),
                });
                Ok(Done::ok("NAMESPACE completed"))
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&mailbox, &item_names).await,
            CommandBody::Create { mailbox } => self.create(&mailbox).await,
            CommandBody::Delete { mailbox } => {
                let name = mailbox_name(&mailbox);
                let (u, n) = (user.clone(), name.clone());
                self.config.store(move |s| s.delete_folder(&u, &n)).await?;
                self.config.notifier.mailbox_changed(&user, &name, None);
                Ok(Done::ok("DELETE completed"))
            }
            CommandBody::Rename { from, to } => {
                let (from, to) = (mailbox_name(&from), mailbox_name(&to));
                let (u, f, t) = (user.clone(), from.clone(), to.clone());
                self.config
                    .store(move |s| s.rename_folder(&u, &f, &t))
                    .await?;
                self.config
                    .notifier
                    .mailbox_changed(&user, &to, Some(&from));
                Ok(Done::ok("RENAME completed"))
            }
            CommandBody::Subscribe { mailbox } => self.subscribe(&mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(&mailbox, false).await,
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append_one(&mailbox, flags, date, message).await,
            CommandBody::GetQuotaRoot { mailbox } => {
                let usage = self.config.store(move |s| s.usage(&user)).await?;
                self.data(Data::QuotaRoot {
                    mailbox,
                    roots: vec![mime::astring("")],
                });
                self.quota_data(usage)?;
                Ok(Done::ok("GETQUOTAROOT completed"))
            }
            CommandBody::GetQuota { root } => {
                if !root.as_ref().is_empty() {
                    return Ok(Done::no("No such quota root"));
                }
                let usage = self.config.store(move |s| s.usage(&user)).await?;
                self.quota_data(usage)?;
                Ok(Done::ok("GETQUOTA completed"))
            }
            CommandBody::SetQuota { .. } => Ok(Done::no("Quotas are set by the provider")),
            CommandBody::Idle => self.idle(tag).await,
            other => self.selected_command(other).await,
        }
    }

    pub(super) fn quota_data(&mut self, usage: pec_store::Usage) -> Result<()> {
        let quota = QuotaGet {
            resource: Resource::Storage,
            usage: usage.used.div_ceil(1024),
            limit: usage.quota / 1024,
        };
        self.data(Data::Quota {
            root: mime::astring(""),
            quotas: Vec1::from(quota),
        });
        Ok(())
    }

    pub(super) async fn selected_command(&mut self, body: CommandBody<'static>) -> Result<Done> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let writable = !sel.read_only;
        match body {
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let mut changed_since = None;
                let mut vanished = false;
                for m in modifiers {
                    match m {
                        FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                        FetchModifier::Vanished => vanished = true,
                    }
                }
                if vanished {
                    // RFC 7162 3.2.6.
                    if !self.qresync {
                        return Ok(Done::bad("VANISHED needs ENABLE QRESYNC"));
                    }
                    let (true, Some(since)) = (uid, changed_since) else {
                        return Ok(Done::bad("VANISHED needs UID FETCH with CHANGEDSINCE"));
                    };
                    self.vanished_in(&sequence_set, since).await?;
                }
                self.fetch(&sequence_set, macro_or_item_names, uid, changed_since)
                    .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                if !writable {
                    return Ok(Done::no("Mailbox is read-only"));
                }
                let unchanged_since = modifiers
                    .iter()
                    .map(|StoreModifier::UnchangedSince(n)| *n)
                    .min();
                let store = StoreRequest {
                    kind,
                    response,
                    flags,
                    uid,
                    unchanged_since,
                };
                self.store(&sequence_set, store).await
            }
            CommandBody::Search { criteria, uid, .. } => self.search(criteria, uid).await,
            CommandBody::Sort {
                sort_criteria,
                search_criteria,
                uid,
                ..
            } => self.sort(sort_criteria, search_criteria, uid).await,
            CommandBody::Thread {
                algorithm,
                search_criteria,
                uid,
                ..
            } => self.thread(algorithm, search_criteria, uid).await,
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&sequence_set, &mailbox, uid, false).await,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                if !writable {
                    return Ok(Done::no("Mailbox is read-only"));
                }
                self.copy(&sequence_set, &mailbox, uid, true).await
            }
            CommandBody::Expunge => {
                if !writable {
                    return Ok(Done::no("Mailbox is read-only"));
                }
                self.expunge(None).await
            }
            CommandBody::ExpungeUid { sequence_set } => {
                if !writable {
                    return Ok(Done::no("Mailbox is read-only"));
                }
                self.expunge(Some(sequence_set)).await
            }
            CommandBody::Close => {
                if writable && !sel.archive {
                    let user = self.user()?;
                    let name = sel.name.clone();
                    let (u, n) = (user.clone(), name.clone());
                    let gone = self.config.store(move |s| s.expunge(&u, &n, None)).await?;
                    if !gone.is_empty() {
                        self.config.notifier.changed(&user, &name);
                    }
                }
                self.selected = None;
                Ok(Done::ok("CLOSE completed"))
            }
            CommandBody::Unselect => {
                self.selected = None;
                Ok(Done::ok("UNSELECT completed"))
            }
            _ => Ok(Done::bad("Command not supported")),
        }
    }
}
