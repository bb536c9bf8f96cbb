//! Administration of enti and their mailboxes: the rules both the command line (`pecd
//! ente …`, `pecd mailbox …`) and the HTTPS API ([`api`]) apply, so the two cannot drift
//! apart. Who acts is an [`Actor`]: the province (the whole gestore) or an ente's
//! administrator, confined to the ente's domains. Every change is recorded in the legal
//! log (event [`LOG_EVENT`]) naming who made it, and every change of a mailbox's life in
//! the mailbox events billing counts ([`usage`]).

pub mod api;
pub mod console;
pub mod events;
pub mod size;
pub mod tokens;
pub mod usage;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pec_net::Authenticator;
use pec_store::{
    Account, Admin, AdminAction, AdminChange, ArchiveOptions, ArchiveScope, Ente, LogEntry,
    MAILBOX_CREATED, MAILBOX_REACTIVATED, MAILBOX_REMOVED, MAILBOX_SUSPENDED, MailboxEvent,
    NewAccount, SUSPENDED_MARK, Store,
};

use crate::clock::{Clock, italian};
use crate::error::{Error, Refusal, Result};
use crate::service::domain_of;

/// The legal log event of every administrative change.
pub const LOG_EVENT: &str = "amministrazione";

/// Shortest password accepted for a mailbox or an administrator.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password accepted (argon2 would take any length; a bound keeps requests small).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Who makes a change, as the legal log names them, and what they may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The name recorded in the legal log (an administrator's login, or who ran a
    /// command on the server).
    pub name: String,
    /// The ente they administer; `None` for the province, which administers everything.
    pub ente: Option<String>,
}

impl Actor {
    /// The province's administrator named `name`.
    pub fn province(name: &str) -> Actor {
        Actor {
            name: name.to_string(),
            ente: None,
        }
    }

    /// Whoever runs an administration command on the server (the province): named
    /// `pecd <command> (<user>)` in the legal log, with the operating-system user.
    pub fn command_line(command: &str) -> Actor {
        let user = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "?".into());
        Actor::province(&format!("pecd {command} ({user})"))
    }
}

/// The status of a mailbox, as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxView {
    /// The address.
    pub address: String,
    /// Quota in bytes.
    pub quota: u64,
    /// Bytes used.
    pub used: u64,
    /// Whether its logins are refused.
    pub suspended: bool,
}

/// Whether a stored password hash is that of a suspended mailbox.
pub fn is_suspended(account: &Account) -> bool {
    account.password_hash.starts_with(SUSPENDED_MARK)
}

/// The ente among `enti` owning `address`'s domain, if `actor` may manage the mailbox
/// (the province any, an ente's administrator its own domains' only).
fn scope<'a>(actor: &Actor, enti: &'a [Ente], address: &str) -> Result<Option<&'a Ente>> {
    let domain = domain_of(address);
    let owner = enti.iter().find(|e| e.domains.contains(&domain));
    match (&actor.ente, owner) {
        (None, _) => Ok(owner),
        (Some(mine), Some(o)) if *mine == o.name => Ok(owner),
        _ => Err(Refusal::forbidden(
            "other-ente",
            format!("la casella {address} non appartiene ai domini del proprio ente"),
        )),
    }
}

/// Archive options in Italian, as the legal log and the command line show them.
pub fn describe_archive(o: &ArchiveOptions) -> String {
    let yes = |b: bool| if b { "sì" } else { "no" };
    let scope = match o.scope {
        ArchiveScope::All => "tutti i messaggi",
        ArchiveScope::Pec => "solo PEC",
    };
    format!(
        "conserva {scope}, inviati {}, ricevuti {}, quota {}",
        yes(o.sent),
        yes(o.received),
        usage::human_size(o.quota)
    )
}

/// The administration of one gestore: its store, its clock (the times of the legal log
/// and of the mailbox events) and its name (the legal log's `gestore`).
pub struct Administration {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The gestore's clock.
    pub clock: Arc<dyn Clock>,
    /// The gestore's name.
    pub gestore: String,
}

/// A new password, checked ([`MIN_PASSWORD_CHARS`], [`MAX_PASSWORD_CHARS`]) and hashed
/// (argon2): what the administration stores, never the password itself.
pub struct NewPassword(String);

impl NewPassword {
    /// `password` checked, then hashed in the bounded pool of `auth` (requests: the API
    /// and the console, so that resets cannot take more of the machine than logins).
    pub async fn hash(auth: &Authenticator, password: &str) -> Result<NewPassword> {
        check_password(password)?;
        let hash = auth
            .hash(password)
            .await
            .map_err(|e| Error::Stored(e.to_string()))?;
        Ok(NewPassword(hash))
    }

    /// `password` checked, then hashed on this thread (the command line).
    pub fn hash_here(password: &str) -> Result<NewPassword> {
        check_password(password)?;
        pec_net::hash_password(password)
            .map(NewPassword)
            .map_err(|e| Error::Stored(e.to_string()))
    }
}

/// Refuses a password too short or too long.
fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(Refusal::invalid(
            "password-too-short",
            format!("la password deve avere almeno {MIN_PASSWORD_CHARS} caratteri"),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(Refusal::invalid(
            "password-too-long",
            format!("la password può avere al massimo {MAX_PASSWORD_CHARS} caratteri"),
        ));
    }
    Ok(())
}

/// Refuses a zero quota (a mailbox that can receive nothing is a mistake, not a setting).
fn check_quota(quota: u64) -> Result<()> {
    if quota == 0 {
        return Err(Refusal::invalid(
            "quota-zero",
            "la quota deve essere maggiore di zero".into(),
        ));
    }
    Ok(())
}

impl Administration {
    /// Stores `action`, made by `actor` on `target`, with its legal log record (saying
    /// `what`) and, when it is a step in a mailbox's life, its mailbox event `kind`: all
    /// in one transaction ([`Store::administer`]). `false` if there was nothing to
    /// change.
    fn apply(
        &self,
        actor: &Actor,
        target: &str,
        what: &str,
        action: AdminAction,
        kind: Option<&str>,
    ) -> Result<bool> {
        let now = self.clock.now();
        let change = AdminChange {
            action,
            event: kind.map(|kind| MailboxEvent {
                address: target.to_string(),
                kind: kind.to_string(),
                at: now.timestamp(),
            }),
            log: self.log_entry(actor, target, what, now),
        };
        self.store.administer(&change).map_err(|e| match e {
            pec_store::Error::AllotmentExceeded {
                ente,
                requested,
                allotment,
            } => Refusal::conflict(
                "allotment-exceeded",
                format!(
                    "quota oltre l'assegnazione dell'ente {ente}: {} richiesti, {} assegnati",
                    usage::human_size(requested),
                    usage::human_size(allotment)
                ),
            ),
            e => e.into(),
        })
    }

    /// The legal log record of a change `what` to `target` made by `actor` at `now`.
    fn log_entry(&self, actor: &Actor, target: &str, what: &str, now: DateTime<Utc>) -> LogEntry {
        let detail = match &actor.ente {
            Some(ente) => format!("{what} (amministratore dell'ente {ente})"),
            None => format!("{what} (amministratore del gestore)"),
        };
        LogEntry {
            at: now.timestamp(),
            at_local: italian(now).to_rfc3339(),
            event: LOG_EVENT.to_string(),
            msgid: String::new(),
            original_msgid: String::new(),
            sender: actor.name.clone(),
            recipients: vec![target.to_string()],
            subject: String::new(),
            generated_ids: Vec::new(),
            gestore: self.gestore.clone(),
            detail,
        }
    }

    /// Refuses anyone but the province.
    fn province_only(actor: &Actor) -> Result<()> {
        match actor.ente {
            None => Ok(()),
            Some(_) => Err(Refusal::forbidden(
                "province-only",
                "operazione riservata all'amministratore del gestore".into(),
            )),
        }
    }

    /// Refuses `actor` a mailbox outside their ente's domains; returns the owning ente.
    fn may_manage(&self, actor: &Actor, address: &str) -> Result<Option<Ente>> {
        Ok(scope(actor, &self.store.list_enti()?, address)?.cloned())
    }

    /// Adds an ente owning hosted `domains` (province only).
    pub fn add_ente(&self, actor: &Actor, ente: &Ente) -> Result<()> {
        Self::province_only(actor)?;
        if ente.name.trim().is_empty() || ente.name.len() > 200 {
            return Err(Refusal::invalid(
                "bad-name",
                "il nome dell'ente deve avere da 1 a 200 caratteri".into(),
            ));
        }
        let what = format!(
            "ente creato: domini {}, assegnazione {}",
            ente.domains.join(", "),
            usage::human_size(ente.allotment)
        );
        let action = AdminAction::AddEnte(ente.clone());
        self.apply(actor, &ente.name, &what, action, None).map(drop)
    }

    /// Hosts a domain whose new mailboxes get `default_quota` (province only).
    pub fn add_domain(&self, actor: &Actor, name: &str, default_quota: u64) -> Result<()> {
        Self::province_only(actor)?;
        check_quota(default_quota)?;
        let name = name.trim().to_lowercase();
        let what = format!(
            "dominio aggiunto, quota predefinita {}",
            usage::human_size(default_quota)
        );
        let action = AdminAction::AddDomain {
            name: name.clone(),
            default_quota,
        };
        self.apply(actor, &name, &what, action, None).map(drop)
    }

    /// Stops hosting a domain without mailboxes (province only).
    pub fn remove_domain(&self, actor: &Actor, name: &str) -> Result<()> {
        Self::province_only(actor)?;
        let name = name.trim().to_lowercase();
        let action = AdminAction::RemoveDomain(name.clone());
        self.apply(actor, &name, "dominio rimosso", action, None)
            .map(drop)
    }

    /// The enti `actor` may see: all for the province, their own for an ente's.
    pub fn enti(&self, actor: &Actor) -> Result<Vec<Ente>> {
        let all = self.store.list_enti()?;
        Ok(match &actor.ente {
            None => all,
            Some(mine) => all.into_iter().filter(|e| e.name == *mine).collect(),
        })
    }

    /// Adds an administrator of `ente`, or of the gestore without one (province only).
    pub fn add_admin(
        &self,
        actor: &Actor,
        login: &str,
        ente: Option<&str>,
        password: &NewPassword,
    ) -> Result<()> {
        Self::province_only(actor)?;
        let login = login.trim().to_lowercase();
        if login.is_empty() || login.len() > 320 || login.contains(char::is_whitespace) {
            return Err(Refusal::invalid(
                "bad-login",
                "il nome di accesso non è valido".into(),
            ));
        }
        let what = match ente {
            Some(e) => format!("amministratore dell'ente {e} aggiunto"),
            None => "amministratore del gestore aggiunto".to_string(),
        };
        let action = AdminAction::AddAdmin(Admin {
            login: login.clone(),
            ente: ente.map(str::to_string),
            password_hash: password.0.clone(),
        });
        self.apply(actor, &login, &what, action, None).map(drop)
    }

    /// Creates a mailbox in a domain `actor` manages, its quota within the ente's
    /// allotment (the domain's default quota without `quota`).
    pub fn create_mailbox(
        &self,
        actor: &Actor,
        address: &str,
        password: &NewPassword,
        quota: Option<u64>,
        receipts_folder: bool,
    ) -> Result<Account> {
        let address = address.trim().to_lowercase();
        self.may_manage(actor, &address)?;
        let domain = domain_of(&address);
        let quota = match quota {
            Some(q) => q,
            None => self
                .store
                .list_domains()?
                .into_iter()
                .find(|d| d.name == domain)
                .map(|d| d.default_quota)
                .ok_or(pec_store::Error::NoSuchDomain(domain))?,
        };
        check_quota(quota)?;
        let action = AdminAction::CreateMailbox(NewAccount {
            address: address.clone(),
            password_hash: password.0.clone(),
            quota: Some(quota),
            receipts_folder,
        });
        let what = format!("casella creata, quota {}", usage::human_size(quota));
        self.apply(actor, &address, &what, action, Some(MAILBOX_CREATED))?;
        Ok(self.store.account(&address)?)
    }

    /// The mailboxes `actor` manages (of one domain if given), with their usage.
    pub fn mailboxes(&self, actor: &Actor, domain: Option<&str>) -> Result<Vec<MailboxView>> {
        let enti = self.store.list_enti()?;
        let mut out = Vec::new();
        for a in self.store.list_accounts(domain)? {
            if scope(actor, &enti, &a.address).is_err() {
                continue;
            }
            out.push(self.view(a)?);
        }
        Ok(out)
    }

    /// One mailbox `actor` manages, with its usage.
    pub fn mailbox(&self, actor: &Actor, address: &str) -> Result<MailboxView> {
        let address = address.trim().to_lowercase();
        self.may_manage(actor, &address)?;
        self.view(self.store.account(&address)?)
    }

    fn view(&self, a: Account) -> Result<MailboxView> {
        let used = self.store.usage(&a.address)?.used;
        Ok(MailboxView {
            suspended: is_suspended(&a),
            address: a.address,
            quota: a.quota,
            used,
        })
    }

    /// Removes a mailbox (its security archive stays).
    pub fn remove_mailbox(&self, actor: &Actor, address: &str) -> Result<()> {
        let address = address.trim().to_lowercase();
        self.may_manage(actor, &address)?;
        let action = AdminAction::RemoveMailbox(address.clone());
        self.apply(
            actor,
            &address,
            "casella eliminata",
            action,
            Some(MAILBOX_REMOVED),
        )
        .map(drop)
    }

    /// Sets a mailbox's password; a suspended mailbox stays suspended.
    pub fn set_password(&self, actor: &Actor, address: &str, password: &NewPassword) -> Result<()> {
        let address = address.trim().to_lowercase();
        self.may_manage(actor, &address)?;
        let action = AdminAction::SetPassword {
            address: address.clone(),
            hash: password.0.clone(),
        };
        self.apply(actor, &address, "password reimpostata", action, None)
            .map(drop)
    }

    /// Sets a mailbox's quota, within its ente's allotment.
    pub fn set_quota(&self, actor: &Actor, address: &str, quota: u64) -> Result<()> {
        let address = address.trim().to_lowercase();
        self.may_manage(actor, &address)?;
        check_quota(quota)?;
        let what = format!("quota impostata a {}", usage::human_size(quota));
        let action = AdminAction::SetQuota {
            address: address.clone(),
            quota,
        };
        self.apply(actor, &address, &what, action, None).map(drop)
    }

    /// Files the mailbox's PEC receipts in `Ricevute` (`on`) or in INBOX.
    pub fn set_receipts_folder(&self, actor: &Actor, address: &str, on: bool) -> Result<()> {
        let address = address.trim().to_lowercase();
        self.may_manage(actor, &address)?;
        let folder = if on { "Ricevute" } else { "INBOX" };
        let what = format!("ricevute archiviate in {folder}");
        let action = AdminAction::ReceiptsFolder {
            address: address.clone(),
            on,
        };
        self.apply(actor, &address, &what, action, None).map(drop)
    }

    /// What the mailbox's security archive keeps and its quota.
    pub fn archive_options(&self, actor: &Actor, address: &str) -> Result<ArchiveOptions> {
        let address = address.trim().to_lowercase();
        self.may_manage(actor, &address)?;
        Ok(self.store.archive_options(&address)?)
    }

    /// Sets what the mailbox's security archive keeps from now on and its quota (apart
    /// from the mailbox quota and the ente's allotment, which are of mailboxes).
    pub fn set_archive_options(
        &self,
        actor: &Actor,
        address: &str,
        options: &ArchiveOptions,
    ) -> Result<()> {
        let address = address.trim().to_lowercase();
        self.may_manage(actor, &address)?;
        check_quota(options.quota)?;
        let what = format!("archivio di sicurezza: {}", describe_archive(options));
        let action = AdminAction::ArchiveOptions {
            address: address.clone(),
            options: *options,
        };
        self.apply(actor, &address, &what, action, None).map(drop)
    }

    /// Suspends a mailbox (`on`: its logins refused, mail still delivered) or reactivates
    /// it; doing what is done already changes nothing and records nothing.
    pub fn suspend(&self, actor: &Actor, address: &str, on: bool) -> Result<()> {
        let address = address.trim().to_lowercase();
        self.may_manage(actor, &address)?;
        let (kind, what) = if on {
            (MAILBOX_SUSPENDED, "casella sospesa")
        } else {
            (MAILBOX_REACTIVATED, "casella riattivata")
        };
        let action = AdminAction::Suspend {
            address: address.clone(),
            on,
        };
        self.apply(actor, &address, what, action, Some(kind))
            .map(drop)
    }
}
