//! Folder commands: LIST (RFC 3501 and RFC 5258), LSUB, CREATE, SUBSCRIBE/UNSUBSCRIBE.

use super::*;

/// A name LIST or LSUB may show: a folder (the security archive included) or a
/// subscribed name without a folder.
pub(super) struct ListEntry {
    pub(super) name: String,
    special_use: Option<String>,
    pub(super) subscribed: bool,
    exists: bool,
}

impl ListEntry {
    /// A name that is neither a folder nor subscribed (LIST shows it `\NonExistent`).
    pub(super) fn gone(name: &str) -> Self {
        ListEntry {
            name: name.to_string(),
            special_use: None,
            subscribed: false,
            exists: false,
        }
    }

    /// The LIST response for this entry: `\HasChildren` or `\HasNoChildren` (by
    /// `children`), `\NonExistent` for a subscribed name without a folder, `\Subscribed`
    /// when `show_subscribed` and it is, its special use, then `extended` data (RFC 5258
    /// `mbox-list-extended`, e.g. CHILDINFO or OLDNAME) if any.
    pub(super) fn list_line(
        &self,
        children: bool,
        show_subscribed: bool,
        extended: Option<&str>,
    ) -> Result<Vec<u8>> {
        let mut items = Vec::new();
        if self.exists {
            items.push(FlagNameAttribute::from(atom(if children {
                "HasChildren"
            } else {
                "HasNoChildren"
            })));
        } else {
            items.push(FlagNameAttribute::from(atom("NonExistent")));
        }
        if show_subscribed && self.subscribed {
            items.push(FlagNameAttribute::from(atom("Subscribed")));
        }
        if let Some(special) = self
            .special_use
            .as_deref()
            .and_then(|s| s.strip_prefix('\\'))
            && let Ok(a) = Atom::try_from(special.to_string())
        {
            items.push(FlagNameAttribute::from(a));
        }
        let data = Data::List {
            items,
            delimiter: Some(QuotedChar::unvalidated('/')),
            mailbox: to_mailbox(&self.name)?,
        };
        let mut line = ResponseCodec::default()
            .encode(&Response::Data(data))
            .dump();
        if let Some(extended) = extended
            && line.ends_with(b"\r\n")
        {
            line.truncate(line.len() - 2);
            line.extend_from_slice(format!(" {extended}\r\n").as_bytes());
        }
        Ok(line)
    }
}

/// Whether a folder of `entries` is below `name`.
pub(super) fn has_children(entries: &[ListEntry], name: &str) -> bool {
    let prefix = format!("{name}/");
    entries
        .iter()
        .any(|c| c.exists && c.name.starts_with(&prefix))
}

/// The account's folders, the security archive (always subscribed) and the subscribed
/// names that are not folders (any more).
pub(super) fn list_entries(
    folders: Vec<pec_store::Folder>,
    subscriptions: Vec<String>,
) -> Vec<ListEntry> {
    // A real folder of the archive's name (an implicit parent made before such names were
    // reserved) would show twice; the archive is the one listed.
    let mut entries: Vec<ListEntry> = folders
        .into_iter()
        .filter(|f| !is_archive(&f.name))
        .map(|f| ListEntry {
            name: f.name,
            special_use: f.special_use,
            subscribed: f.subscribed,
            exists: true,
        })
        .collect();
    entries.push(ListEntry {
        name: ARCHIVE_FOLDER.to_string(),
        special_use: None,
        subscribed: true,
        exists: true,
    });
    let known: HashSet<String> = entries.iter().map(|e| e.name.clone()).collect();
    entries.extend(
        subscriptions
            .into_iter()
            .filter(|n| !known.contains(n))
            .map(|name| ListEntry {
                name,
                special_use: None,
                subscribed: true,
                exists: false,
            }),
    );
    entries
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn list(&mut self, opts: &ListOptions, lsub: bool) -> Result<Done> {
        let user = self.user()?;
        let completed = if lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        };
        if !lsub && opts.patterns.iter().all(|p| p.is_empty()) {
            self.data(Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter: Some(QuotedChar::unvalidated('/')),
                mailbox: to_mailbox("")?,
            });
            return Ok(Done::ok(completed));
        }
        let with_subscriptions = lsub || opts.subscribed;
        let (folders, subscriptions) = self
            .config
            .store(move |s| {
                let folders = s.list_folders(&user)?;
                let subscriptions = if with_subscriptions {
                    s.subscriptions(&user)?
                } else {
                    Vec::new()
                };
                Ok((folders, subscriptions))
            })
            .await?;
        let entries = list_entries(folders, subscriptions);
        // Each pattern twice: as given, and upper-cased for INBOX (case-insensitive).
        let mut patterns = Vec::new();
        for p in &opts.patterns {
            let full = [opts.reference.as_slice(), p.as_slice()].concat();
            match (
                Pattern::new(&full),
                Pattern::new(&full.to_ascii_uppercase()),
            ) {
                (Ok(p), Ok(upper)) => patterns.push((p, upper)),
                _ => return Ok(Done::bad("Mailbox pattern too long")),
            }
        }
        let matches_pattern = |name: &str| {
            patterns.iter().any(|(p, upper)| {
                if name == "INBOX" {
                    upper.matches(b"INBOX")
                } else {
                    p.matches(name.as_bytes())
                }
            })
        };
        if lsub {
            return self.lsub(&entries, &matches_pattern);
        }
        // What the selection options ask for, patterns aside.
        let selects = |e: &ListEntry| {
            (!opts.subscribed || e.subscribed)
                && (!opts.special_use || e.special_use.is_some())
                && (e.exists || opts.subscribed)
        };
        let mut lines = Vec::new();
        for f in &entries {
            if !matches_pattern(&f.name) {
                continue;
            }
            let prefix = format!("{}/", f.name);
            let descendants = entries.iter().filter(|c| c.name.starts_with(&prefix));
            let children = has_children(&entries, &f.name);
            // RFC 5258 RECURSIVEMATCH: a parent of selected mailboxes that the patterns
            // do not return is listed (with CHILDINFO) even when not selected itself.
            let child_info = opts.recursive_match
                && descendants
                    .filter(|c| !matches_pattern(&c.name))
                    .any(selects);
            if !selects(f) && !child_info {
                continue;
            }
            let child_info = child_info.then(|| {
                let mut criteria = Vec::new();
                if opts.subscribed {
                    criteria.push("\"SUBSCRIBED\"");
                }
                if opts.special_use {
                    criteria.push("\"SPECIAL-USE\"");
                }
                format!("(\"CHILDINFO\" ({}))", criteria.join(" "))
            });
            let line = f.list_line(
                children,
                opts.subscribed || opts.return_subscribed,
                child_info.as_deref(),
            )?;
            lines.push(line);
        }
        for line in lines {
            self.out.extend_from_slice(&line);
        }
        Ok(Done::ok(completed))
    }

    /// LSUB (RFC 3501 6.3.9): the subscribed names the patterns match, and, for a
    /// subscribed name they do not match, its unsubscribed parents they do match, as
    /// `\Noselect` (so `%` shows `foo` when only `foo/bar` is subscribed).
    pub(super) fn lsub(
        &mut self,
        entries: &[ListEntry],
        matches_pattern: &dyn Fn(&str) -> bool,
    ) -> Result<Done> {
        let subscribed: HashSet<&str> = entries
            .iter()
            .filter(|e| e.subscribed)
            .map(|e| e.name.as_str())
            .collect();
        let mut shown: BTreeMap<String, bool> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.subscribed) {
            if matches_pattern(&e.name) {
                shown.insert(e.name.clone(), !e.exists);
                continue;
            }
            let mut parent = e.name.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                parent = up;
                if !subscribed.contains(parent) && matches_pattern(parent) {
                    shown.insert(parent.to_string(), true);
                }
            }
        }
        // INBOX first, as LIST does.
        let mut names: Vec<(String, bool)> = shown.into_iter().collect();
        names.sort_by_key(|(n, _)| n != "INBOX");
        for (name, noselect) in names {
            let items = if noselect {
                vec![FlagNameAttribute::Noselect]
            } else {
                Vec::new()
            };
            self.data(Data::Lsub {
                items,
                delimiter: Some(QuotedChar::unvalidated('/')),
                mailbox: to_mailbox(&name)?,
            });
        }
        Ok(Done::ok("LSUB completed"))
    }

    /// CREATE, superior hierarchy names included (RFC 3501 6.3.3), within the folder cap.
    pub(super) async fn create(&mut self, mailbox: &Mailbox<'_>) -> Result<Done> {
        let user = self.user()?;
        let name = mailbox_name(mailbox).trim_end_matches('/').to_string();
        let u = user.clone();
        let count = self.config.store(move |s| s.list_folders(&u)).await?.len();
        if count >= self.config.limits.max_folders {
            return Ok(Done::no_code("LIMIT", "Too many folders"));
        }
        let u = user.clone();
        let created = self
            .config
            .store(move |s| {
                let mut created = Vec::new();
                let mut parent = String::new();
                for part in name.split('/').take(name.split('/').count() - 1) {
                    if !parent.is_empty() {
                        parent.push('/');
                    }
                    parent.push_str(part);
                    match s.create_folder(&u, &parent) {
                        Ok(()) => created.push(parent.clone()),
                        Err(pec_store::Error::AlreadyExists(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                s.create_folder(&u, &name)?;
                created.push(name);
                Ok(created)
            })
            .await?;
        for name in created {
            self.config.notifier.mailbox_changed(&user, &name, None);
        }
        Ok(Done::ok("CREATE completed"))
    }

    /// SUBSCRIBE (`on`) or UNSUBSCRIBE.
    pub(super) async fn subscribe(&mut self, mailbox: &Mailbox<'_>, on: bool) -> Result<Done> {
        let user = self.user()?;
        let name = mailbox_name(mailbox);
        let (u, n) = (user.clone(), name.clone());
        self.config
            .store(move |s| s.set_subscribed(&u, &n, on))
            .await?;
        self.config.notifier.subscription_changed(&user, &name);
        Ok(Done::ok(if on {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        }))
    }
}
