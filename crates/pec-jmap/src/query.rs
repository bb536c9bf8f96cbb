//! Email/query (RFC 8621 §4.4): filters over the account's messages, sorted by arrival.
//!
//! Conditions on metadata (`inMailbox`, `inMailboxOtherThan`, `before`, `after`,
//! `minSize`, `maxSize`, `hasKeyword`, `notKeyword`) cost nothing; conditions on content
//! (`text`, `from`, `to`, `cc`, `bcc`, `subject`, `body`, `header`, `hasAttachment`, and
//! ours, `pecKind` and `pecRefersTo`) read each candidate message, so a query that would
//! read more than [`crate::Limits::max_scanned`] of them is refused. Text matches are
//! substrings, ignoring case. Sorts: `receivedAt`, `size`. Email/queryChanges answers from
//! Email/changes' reading of the store's counters.

use chrono::DateTime;
use mail_parser::{Address, Message};
use pec_store::MessageMeta;
use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::args;
use crate::email::Index;
use crate::error::{Error, Result};
use crate::ids::{EmailId, Place};
use crate::protocol::Arguments;
use crate::{keywords, pec};

/// Deepest nesting of filter operators accepted.
const MAX_DEPTH: usize = 8;
/// Most conditions and operators in one filter.
const MAX_NODES: usize = 64;

/// One condition of a FilterCondition.
#[derive(Debug, Clone)]
enum Condition {
    InMailbox(Place),
    InMailboxOtherThan(Vec<Place>),
    Before(i64),
    After(i64),
    MinSize(u64),
    MaxSize(u64),
    HasKeyword(String),
    NotKeyword(String),
    HasAttachment(bool),
    /// A substring of a field (`text`, `from`, `to`, `cc`, `bcc`, `subject`, `body`).
    Contains(Field, String),
    /// A header field present, with a value containing the text if given.
    Header(String, Option<String>),
    PecKind(String),
    PecRefersTo(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Text,
    From,
    To,
    Cc,
    Bcc,
    Subject,
    Body,
}

/// A filter: conditions (all must hold) or an operator over filters.
#[derive(Debug, Clone)]
enum Filter {
    All(Vec<Condition>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Vec<Filter>),
}

fn invalid(what: impl Into<String>) -> Error {
    Error::InvalidArguments(format!("filter: {}", what.into()))
}

fn utc(value: &Value, name: &str) -> Result<i64> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .ok_or_else(|| invalid(format!("{name} must be a UTCDate")))
}

fn text(value: &Value, name: &str) -> Result<String> {
    value
        .as_str()
        .map(str::to_lowercase)
        .ok_or_else(|| invalid(format!("{name} must be a string")))
}

fn place(value: &Value) -> Result<Place> {
    value
        .as_str()
        .and_then(Place::parse_mailbox)
        .ok_or_else(|| invalid("not a mailbox id"))
}

fn keyword(value: &Value) -> Result<String> {
    value
        .as_str()
        .and_then(keywords::to_flag)
        .ok_or_else(|| invalid("not a keyword"))
}

fn condition(name: &str, v: &Value, using_pec: bool) -> Result<Condition> {
    let field = |f| Ok(Condition::Contains(f, text(v, name)?));
    match name {
        "inMailbox" => Ok(Condition::InMailbox(place(v)?)),
        "inMailboxOtherThan" => {
            let list = v.as_array().ok_or_else(|| invalid("inMailboxOtherThan"))?;
            Ok(Condition::InMailboxOtherThan(
                list.iter()
                    .take(MAX_NODES)
                    .map(place)
                    .collect::<Result<_>>()?,
            ))
        }
        "before" => Ok(Condition::Before(utc(v, name)?)),
        "after" => Ok(Condition::After(utc(v, name)?)),
        "minSize" => Ok(Condition::MinSize(v.as_u64().ok_or_else(|| invalid(name))?)),
        "maxSize" => Ok(Condition::MaxSize(v.as_u64().ok_or_else(|| invalid(name))?)),
        "hasKeyword" => Ok(Condition::HasKeyword(keyword(v)?)),
        "notKeyword" => Ok(Condition::NotKeyword(keyword(v)?)),
        "hasAttachment" => Ok(Condition::HasAttachment(
            v.as_bool().ok_or_else(|| invalid(name))?,
        )),
        "text" => field(Field::Text),
        "from" => field(Field::From),
        "to" => field(Field::To),
        "cc" => field(Field::Cc),
        "bcc" => field(Field::Bcc),
        "subject" => field(Field::Subject),
        "body" => field(Field::Body),
        "header" => {
            let list = v
                .as_array()
                .ok_or_else(|| invalid("header must be a list"))?;
            let name = list
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("header needs a name"))?;
            let value = list.get(1).map(|v| text(v, "header")).transpose()?;
            Ok(Condition::Header(name.to_ascii_lowercase(), value))
        }
        "pecKind" | "pecRefersTo" if !using_pec => Err(Error::UnsupportedFilter(format!(
            "{name} needs {} in using",
            crate::session::PEC
        ))),
        "pecKind" => Ok(Condition::PecKind(text(v, name)?)),
        "pecRefersTo" => Ok(Condition::PecRefersTo(
            pec::bare_id(v.as_str().ok_or_else(|| invalid(name))?).to_string(),
        )),
        other => Err(Error::UnsupportedFilter(format!(
            "filter condition {other} is not supported"
        ))),
    }
}

/// Reads a filter, at most [`MAX_DEPTH`] operators deep and [`MAX_NODES`] in all.
fn parse(value: &Value, depth: usize, nodes: &mut usize, using_pec: bool) -> Result<Filter> {
    *nodes += 1;
    if depth > MAX_DEPTH || *nodes > MAX_NODES {
        return Err(Error::UnsupportedFilter("the filter is too large".into()));
    }
    let object = value
        .as_object()
        .ok_or_else(|| invalid("an object is required"))?;
    if let Some(op) = object.get("operator") {
        let conditions = object
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("an operator needs conditions"))?;
        let inner = conditions
            .iter()
            .map(|c| parse(c, depth + 1, nodes, using_pec))
            .collect::<Result<Vec<_>>>()?;
        return match op.as_str() {
            Some("AND") => Ok(Filter::And(inner)),
            Some("OR") => Ok(Filter::Or(inner)),
            Some("NOT") => Ok(Filter::Not(inner)),
            _ => Err(invalid("operator must be AND, OR or NOT")),
        };
    }
    let mut all = Vec::new();
    for (name, v) in object {
        *nodes += 1;
        if *nodes > MAX_NODES {
            return Err(Error::UnsupportedFilter("the filter is too large".into()));
        }
        all.push(condition(name, v, using_pec)?);
    }
    Ok(Filter::All(all))
}

/// The texts SearchSnippet/get marks in subjects: the `text` and `subject` conditions of
/// `value` outside any `NOT`, lower case (parsed with Email/query's bounds).
pub fn subject_terms(value: &Value, using_pec: bool) -> Result<Vec<String>> {
    let mut nodes = 0;
    let filter = parse(value, 0, &mut nodes, using_pec)?;
    let mut terms = Vec::new();
    let mut stack = vec![&filter];
    while let Some(f) = stack.pop() {
        match f {
            Filter::All(conditions) => terms.extend(conditions.iter().filter_map(|c| match c {
                Condition::Contains(Field::Text | Field::Subject, t) if !t.is_empty() => {
                    Some(t.clone())
                }
                _ => None,
            })),
            Filter::And(inner) | Filter::Or(inner) => stack.extend(inner),
            Filter::Not(_) => {}
        }
    }
    Ok(terms)
}

/// What content conditions read of one message, loaded once.
struct Content {
    from: String,
    to: String,
    cc: String,
    bcc: String,
    subject: String,
    body: String,
    headers: Vec<(String, String)>,
    has_attachment: bool,
    pec: Option<pec::Facts>,
}

fn address_text(a: Option<&Address<'_>>) -> String {
    a.map(|a| {
        a.iter()
            .map(|x| format!("{} <{}>", x.name().unwrap_or(""), x.address().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", ")
            .to_lowercase()
    })
    .unwrap_or_default()
}

impl Content {
    fn load(raw: &[u8], with_pec: bool) -> Content {
        let parsed = pec_proto::bounded::parse(raw);
        let m: Option<&Message<'_>> = parsed.message();
        let body = m
            .map(|m| {
                m.text_body
                    .iter()
                    .filter_map(|&i| m.part(i).and_then(|p| p.text_contents()))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .to_lowercase()
            })
            .unwrap_or_default();
        let headers = m
            .map(|m| {
                m.headers_raw()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_lowercase()))
                    .collect()
            })
            .unwrap_or_default();
        Content {
            from: address_text(m.and_then(Message::from)),
            to: address_text(m.and_then(Message::to)),
            cc: address_text(m.and_then(Message::cc)),
            bcc: address_text(m.and_then(Message::bcc)),
            subject: m.and_then(Message::subject).unwrap_or("").to_lowercase(),
            body,
            headers,
            has_attachment: m.is_some_and(|m| !m.attachments.is_empty()),
            pec: if with_pec { pec::facts(raw) } else { None },
        }
    }

    fn contains(&self, field: Field, needle: &str) -> bool {
        let fields: &[&str] = match field {
            Field::From => &[&self.from],
            Field::To => &[&self.to],
            Field::Cc => &[&self.cc],
            Field::Bcc => &[&self.bcc],
            Field::Subject => &[&self.subject],
            Field::Body => &[&self.body],
            Field::Text => &[
                &self.from,
                &self.to,
                &self.cc,
                &self.bcc,
                &self.subject,
                &self.body,
            ],
        };
        fields.iter().any(|f| f.contains(needle))
    }
}

/// One message under test, its content read on first need.
struct Candidate<'a> {
    id: EmailId,
    meta: &'a MessageMeta,
    content: Option<Content>,
}

/// Reads message bytes for content conditions, within the scan limit.
struct Reader<'i, 'c> {
    index: &'i Index<'c>,
    with_pec: bool,
}

impl Reader<'_, '_> {
    fn content<'a>(&self, c: &'a mut Candidate<'_>) -> Result<&'a Content> {
        if c.content.is_none() {
            let raw = self.index.bytes(c.id)?;
            c.content = Some(Content::load(&raw, self.with_pec));
        }
        c.content
            .as_ref()
            .ok_or_else(|| invalid("internal: content not loaded"))
    }

    fn matches(&self, f: &Filter, c: &mut Candidate<'_>) -> Result<bool> {
        match f {
            Filter::All(conditions) => {
                for cond in conditions {
                    if !self.holds(cond, c)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Filter::And(inner) => {
                for f in inner {
                    if !self.matches(f, c)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Filter::Or(inner) => {
                for f in inner {
                    if self.matches(f, c)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Filter::Not(inner) => {
                for f in inner {
                    if self.matches(f, c)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    fn holds(&self, cond: &Condition, c: &mut Candidate<'_>) -> Result<bool> {
        let has_flag = |flag: &str| c.meta.flags.iter().any(|f| f.eq_ignore_ascii_case(flag));
        Ok(match cond {
            Condition::InMailbox(p) => c.id.place == *p,
            Condition::InMailboxOtherThan(ps) => !ps.contains(&c.id.place),
            Condition::Before(t) => c.meta.internaldate < *t,
            Condition::After(t) => c.meta.internaldate >= *t,
            Condition::MinSize(s) => c.meta.size >= *s,
            Condition::MaxSize(s) => c.meta.size < *s,
            Condition::HasKeyword(k) => has_flag(k),
            Condition::NotKeyword(k) => !has_flag(k),
            Condition::HasAttachment(b) => self.content(c)?.has_attachment == *b,
            Condition::Contains(field, needle) => self.content(c)?.contains(*field, needle),
            Condition::Header(name, value) => self.content(c)?.headers.iter().any(|(n, v)| {
                n == name && value.as_ref().is_none_or(|want| v.contains(want.as_str()))
            }),
            Condition::PecKind(kind) => self
                .content(c)?
                .pec
                .as_ref()
                .is_some_and(|f| f.kind.as_str() == kind),
            Condition::PecRefersTo(id) => self
                .content(c)?
                .pec
                .as_ref()
                .is_some_and(|f| f.ids.iter().any(|i| i.eq_ignore_ascii_case(id))),
        })
    }
}

fn reads_content(f: &Filter) -> (bool, bool) {
    // (reads content, needs the PEC classification), over a tree at most MAX_DEPTH deep.
    let mut stack = vec![f];
    let (mut content, mut pec) = (false, false);
    while let Some(f) = stack.pop() {
        match f {
            Filter::All(cs) => {
                for c in cs {
                    match c {
                        Condition::PecKind(_) | Condition::PecRefersTo(_) => {
                            content = true;
                            pec = true;
                        }
                        Condition::Contains(..)
                        | Condition::Header(..)
                        | Condition::HasAttachment(_) => content = true,
                        _ => {}
                    }
                }
            }
            Filter::And(inner) | Filter::Or(inner) | Filter::Not(inner) => stack.extend(inner),
        }
    }
    (content, pec)
}

/// The sort: by arrival (`receivedAt`, the default, newest first) or `size`.
fn comparator(args: &Arguments) -> Result<(bool, bool)> {
    let Some(sort) = args.get("sort").filter(|s| !s.is_null()) else {
        return Ok((false, false));
    };
    let list = sort
        .as_array()
        .ok_or_else(|| invalid("sort must be a list"))?;
    let Some(first) = list.first() else {
        return Ok((false, false));
    };
    if list.len() > 1 {
        return Err(Error::UnsupportedSort("one sort comparator only".into()));
    }
    let ascending = first
        .get("isAscending")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    match first.get("property").and_then(Value::as_str) {
        Some("receivedAt") => Ok((false, ascending)),
        Some("size") => Ok((true, ascending)),
        other => Err(Error::UnsupportedSort(format!(
            "Email/query cannot sort by {other:?}"
        ))),
    }
}

/// What a query asks: its filter and its sort.
struct Asked {
    filter: Filter,
    by_size: bool,
    ascending: bool,
}

impl Asked {
    fn read(ctx: &Ctx<'_>, args: &Arguments) -> Result<Asked> {
        let filter = match args.get("filter") {
            None | Some(Value::Null) => Filter::All(Vec::new()),
            Some(v) => parse(v, 0, &mut 0, ctx.using_pec)?,
        };
        let (by_size, ascending) = comparator(args)?;
        Ok(Asked {
            filter,
            by_size,
            ascending,
        })
    }

    /// Whether an email's membership can change after it arrived: only keywords
    /// change (content, size, arrival and mailbox do not: a move makes a new email).
    fn mutable(&self) -> bool {
        let mut stack = vec![&self.filter];
        while let Some(f) = stack.pop() {
            match f {
                Filter::All(cs) => {
                    if cs
                        .iter()
                        .any(|c| matches!(c, Condition::HasKeyword(_) | Condition::NotKeyword(_)))
                    {
                        return true;
                    }
                }
                Filter::And(inner) | Filter::Or(inner) | Filter::Not(inner) => stack.extend(inner),
            }
        }
        false
    }

    /// The emails of `index` that match, sorted.
    fn run(&self, ctx: &Ctx<'_>, index: &mut Index<'_>) -> Result<Vec<EmailId>> {
        let (content, with_pec) = reads_content(&self.filter);
        let places: Vec<Place> = index.views.iter().map(|v| v.place).collect();
        let mut all: Vec<(EmailId, MessageMeta)> = Vec::new();
        for place in places {
            for meta in index.metas(place)? {
                all.push((
                    EmailId {
                        place,
                        uid: meta.uid,
                    },
                    meta.clone(),
                ));
            }
        }
        // Metadata conditions first, for free; then the scan limit on what is left.
        let reader = Reader {
            index: &*index,
            with_pec,
        };
        let mut matched: Vec<(EmailId, &MessageMeta)> = Vec::new();
        let mut candidates = Vec::new();
        for (id, meta) in &all {
            let mut c = Candidate {
                id: *id,
                meta,
                content: None,
            };
            if !content {
                if reader.matches(&self.filter, &mut c)? {
                    matched.push((*id, meta));
                }
            } else {
                candidates.push(c);
            }
        }
        if candidates.len() > ctx.limits.max_scanned {
            return Err(Error::UnsupportedFilter(format!(
                "the filter would read {} messages, more than {}: narrow it with inMailbox, \
                 before or after",
                candidates.len(),
                ctx.limits.max_scanned
            )));
        }
        for mut c in candidates {
            if reader.matches(&self.filter, &mut c)? {
                matched.push((c.id, c.meta));
            }
        }
        matched.sort_by(|a, b| {
            let order = if self.by_size {
                a.1.size.cmp(&b.1.size)
            } else {
                a.1.internaldate.cmp(&b.1.internaldate)
            }
            .then(a.0.cmp(&b.0));
            if self.ascending {
                order
            } else {
                order.reverse()
            }
        });
        Ok(matched.into_iter().map(|(id, _)| id).collect())
    }
}

/// Email/query.
pub fn query(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let asked = Asked::read(ctx, args)?;
    let mut index = Index::new(ctx)?;
    let ids: Vec<String> = asked
        .run(ctx, &mut index)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let (position, page) = args::window(args, &ids, ctx.limits.max_objects_in_get)?;
    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("queryState".into(), index.state().into());
    r.insert("canCalculateChanges".into(), true.into());
    r.insert("position".into(), position.into());
    r.insert("ids".into(), json!(page));
    if args::boolean(args, "calculateTotal", false)? {
        r.insert("total".into(), ids.len().into());
    }
    Ok(r)
}

/// Email/queryChanges (RFC 8620 §5.6), for any filter and sort Email/query takes: the
/// query state is the Email state, so what changed since is Email/changes' answer.
/// Destroyed emails are `removed`; created ones that match are `added` at their index;
/// with a keyword condition, updated emails are both (their membership may have
/// changed). `removed` may name emails that were not in the results (RFC 8620 allows
/// it); `upToId` is not used (the answer covers the whole results).
pub fn query_changes(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let old = args::required_string(args, "sinceQueryState")?;
    let incalculable = || Error::CannotCalculateChanges(old.to_string());
    let asked = Asked::read(ctx, args)?;
    let mut index = Index::new(ctx)?;
    let [created, updated, destroyed] =
        crate::changes::since(&mut index, old)?.ok_or_else(incalculable)?;
    let results = asked.run(ctx, &mut index)?;
    let mut removed = destroyed;
    let mut fresh = created;
    if asked.mutable() {
        removed.extend(&updated);
        fresh.extend(&updated);
    }
    fresh.sort_unstable();
    let added: Vec<Value> = results
        .iter()
        .enumerate()
        .filter(|(_, id)| fresh.binary_search(id).is_ok())
        .map(|(i, id)| json!({"id": id.to_string(), "index": i}))
        .collect();
    let max = args::unsigned(args, "maxChanges")?;
    if max.is_some_and(|m| m < (removed.len() + added.len()) as u64) {
        return Err(incalculable());
    }
    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("oldQueryState".into(), old.into());
    r.insert("newQueryState".into(), index.state().into());
    if args::boolean(args, "calculateTotal", false)? {
        r.insert("total".into(), results.len().into());
    }
    r.insert(
        "removed".into(),
        json!(removed.iter().map(ToString::to_string).collect::<Vec<_>>()),
    );
    r.insert("added".into(), Value::Array(added));
    Ok(r)
}
