//! Okta's SCIM-style `filter` expressions: parsing, per-endpoint validation and evaluation.
//!
//! The grammar is Okta's ("Filter" and "Operators", developer.okta.com/docs/api/#filter):
//! attribute operators `eq ne gt ge lt le sw ew co pr`, logical `and`, `or`, `not`, grouping
//! with `()`, string literals as JSON strings, attribute names case-sensitive and operators
//! case-insensitive. Each endpoint then admits only some attributes and operators (see
//! `server`), as Okta documents per object.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Sw,
    Ew,
    Co,
    Pr,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "co" => Op::Co,
            "pr" => Op::Pr,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
            Op::Sw => "sw",
            Op::Ew => "ew",
            Op::Co => "co",
            Op::Pr => "pr",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Cmp { attr: String, op: Op, value: Option<String> },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

/// Why a filter was refused, in the words of Okta's System Log error examples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FilterError {
    /// E0000053 "Invalid filter '…': …".
    Syntax(String),
    /// E0000053 "field is not valid: …".
    InvalidField(String),
    /// E0000031 "The supplied combination of operator and field is not currently supported."
    Unsupported { op: &'static str, field: String },
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::Syntax(m) => f.write_str(m),
            FilterError::InvalidField(field) => write!(f, "field is not valid: {field}"),
            FilterError::Unsupported { op, field } => write!(
                f,
                "The supplied combination of operator and field is not currently supported. Operator: {op}, Field: {field}"
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String, usize),
    Str(String),
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' => i += 1,
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b'"' => {
                // A JSON string literal ("String literals must be valid JSON strings").
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if i >= b.len() {
                    return Err(format!("Unterminated string at position {start}"));
                }
                i += 1;
                let lit: String =
                    serde_json::from_str(&s[start..i]).map_err(|_| format!("Invalid string at position {start}"))?;
                out.push(Tok::Str(lit));
            }
            _ => {
                let start = i;
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'(' | b')' | b'"') {
                    i += 1;
                }
                out.push(Tok::Word(s[start..i].to_owned(), start));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn keyword(&mut self, k: &str) -> bool {
        if let Some(Tok::Word(w, _)) = self.toks.get(self.at)
            && w.eq_ignore_ascii_case(k)
        {
            self.at += 1;
            return true;
        }
        false
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.group()?)));
        }
        if self.toks.get(self.at) == Some(&Tok::Open) {
            return self.group();
        }
        let Some(Tok::Word(attr, _)) = self.toks.get(self.at).cloned() else {
            return Err("Expected an attribute name".to_owned());
        };
        self.at += 1;
        let Some(Tok::Word(op, pos)) = self.toks.get(self.at).cloned() else {
            return Err(format!("Expected an operator after '{attr}'"));
        };
        let Some(op) = Op::parse(&op) else {
            return Err(format!(
                "Unrecognized attribute operator '{op}' at position {pos}. Expected: eq,co,sw,pr,gt,ge,lt,le"
            ));
        };
        self.at += 1;
        if op == Op::Pr {
            return Ok(Expr::Cmp { attr, op, value: None });
        }
        let value = match self.toks.get(self.at).cloned() {
            Some(Tok::Str(s)) => s,
            // Numbers and booleans are literals too ("numbers, … and Boolean values").
            Some(Tok::Word(w, _)) if w.parse::<f64>().is_ok() || w == "true" || w == "false" => w,
            _ => return Err(format!("Expected a value after '{attr} {}'", op.as_str())),
        };
        self.at += 1;
        Ok(Expr::Cmp { attr, op, value: Some(value) })
    }

    fn group(&mut self) -> Result<Expr, String> {
        if self.toks.get(self.at) != Some(&Tok::Open) {
            return Err("Expected '('".to_owned());
        }
        self.at += 1;
        let e = self.or()?;
        if self.toks.get(self.at) != Some(&Tok::Close) {
            return Err("Expected ')'".to_owned());
        }
        self.at += 1;
        Ok(e)
    }
}

/// Parses a filter; the error is Okta's "Invalid filter '<filter>': <why>".
pub(crate) fn parse(filter: &str) -> Result<Expr, FilterError> {
    let bad = |why: String| FilterError::Syntax(format!("Invalid filter '{filter}': {why}"));
    let toks = tokenize(filter).map_err(bad)?;
    let mut p = Parser { toks, at: 0 };
    let e = p.or().map_err(bad)?;
    if p.at != p.toks.len() {
        return Err(bad("Unexpected input after the expression".to_owned()));
    }
    Ok(e)
}

impl Expr {
    /// Every (attribute, operator, negated) the expression uses, for per-endpoint checks.
    pub(crate) fn visit(
        &self,
        f: &mut dyn FnMut(&str, Op, bool) -> Result<(), FilterError>,
    ) -> Result<(), FilterError> {
        self.visit_inner(f, false)
    }

    fn visit_inner(
        &self,
        f: &mut dyn FnMut(&str, Op, bool) -> Result<(), FilterError>,
        neg: bool,
    ) -> Result<(), FilterError> {
        match self {
            Expr::Cmp { attr, op, .. } => f(attr, *op, neg),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.visit_inner(f, neg)?;
                b.visit_inner(f, neg)
            }
            Expr::Not(e) => e.visit_inner(f, true),
        }
    }

    /// Evaluates against an object whose attribute `attr` has the values `values(attr)` (several
    /// for an attribute inside an array, such as `target.id`: a comparison matches when any
    /// element does, RFC 7644 §3.4.2.2, which Okta follows).
    pub(crate) fn matches(&self, values: &dyn Fn(&str) -> Vec<String>) -> bool {
        match self {
            Expr::Cmp { attr, op, value } => {
                let vals = values(attr);
                let v = value.as_deref().unwrap_or_default();
                match op {
                    Op::Pr => vals.iter().any(|x| !x.is_empty()),
                    Op::Ne => !vals.iter().any(|x| x == v),
                    _ => vals.iter().any(|x| match op {
                        Op::Eq => x == v,
                        Op::Gt => x.as_str() > v,
                        Op::Ge => x.as_str() >= v,
                        Op::Lt => x.as_str() < v,
                        Op::Le => x.as_str() <= v,
                        Op::Sw => x.starts_with(v),
                        Op::Ew => x.ends_with(v),
                        Op::Co => x.contains(v),
                        Op::Pr | Op::Ne => false,
                    }),
                }
            }
            Expr::And(a, b) => a.matches(values) && b.matches(values),
            Expr::Or(a, b) => a.matches(values) || b.matches(values),
            Expr::Not(e) => !e.matches(values),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(attr: &str) -> Vec<String> {
        match attr {
            "eventType" => vec!["user.session.start".to_owned()],
            "target.id" => vec!["A".to_owned(), "B".to_owned()],
            "outcome.result" => vec!["FAILURE".to_owned()],
            _ => Vec::new(),
        }
    }

    #[test]
    fn parses_and_evaluates_okta_examples() {
        let ok = |f: &str| parse(f).map(|e| e.matches(&vals)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(ok(r#"eventType eq "user.session.start" and outcome.result eq "FAILURE""#));
        assert!(ok(r#"target.id eq "A" and target.id eq "B""#));
        assert!(!ok(r#"target.id eq "C""#));
        assert!(ok(r#"eventType sw "user.session""#));
        assert!(ok(r#"eventType co "session""#));
        assert!(ok(r#"eventType ew "start""#));
        assert!(ok(r#"eventType EQ "user.session.start""#), "operators are case-insensitive");
        assert!(!ok(r#"eventType eq "USER.SESSION.START""#), "values are case-sensitive");
        assert!(ok(r#"(eventType eq "x" or eventType eq "user.session.start") and not (target.id eq "C")"#));
        assert!(ok(r#"target.id ne "C""#));
        assert!(ok("target.id pr"));
        let err = parse(r#"display_message eqq "Create okta user""#).err();
        assert_eq!(
            err,
            Some(FilterError::Syntax(
                "Invalid filter 'display_message eqq \"Create okta user\"': Unrecognized attribute operator 'eqq' at position 16. Expected: eq,co,sw,pr,gt,ge,lt,le".to_owned()
            )),
            "Okta's documented example, position included"
        );
        assert!(parse(r#"eventType eq "x" and"#).is_err());
        assert!(parse(r#"(eventType eq "x""#).is_err());
        assert!(parse(r#"eventType eq "x"#).is_err());
    }
}
