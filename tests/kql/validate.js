#!/usr/bin/env node
// Offline validation of the Microsoft Sentinel content in packs/sentinel.
//
// Uses the Kusto language service (@kusto/language-service-next, pinned in package.json:
// the C# Kusto.Language compiled to JS) to parse and type-check:
//   * every .kql file and every `query:` / `FunctionQuery:` in the YAML files under
//     packs/sentinel, against declared symbols: KeychainAccess_CL and
//     KeychainAccessHealth_CL (built from table-keychainaccess.json, whose columns are
//     checked against packs/schema/keychain_access_events.json), the parser function
//     KeychainAccessProcessEvents (a FunctionSymbol with its real body) and
//     DeviceProcessEvents (for the seed query);
//   * every transformKql of the DCR JSONs, against the stream `source` with the declared
//     stream columns; their operators and functions are held to the list Azure Monitor
//     transformations support, and their output must be the destination table's schema.
// It also checks the analytics rule and hunting YAMLs against the Azure-Sentinel template
// rules, and that the rule and the improved query use exactly the schema's alert predicate.
// A negative self-test first proves each check can fail.
//
// Run: node tests/kql/validate.js   (after `npm ci` in tests/kql). Exit 1 on any error.

"use strict";

const fs = require("fs");
const path = require("path");

require("@kusto/language-service-next/bridge");
require("@kusto/language-service-next/Kusto.Language.Bridge");
const YAML = require("yaml");

/* global Kusto, Bridge */
const S = Kusto.Language.Symbols;
const T = S.ScalarTypes;
const SyntaxKind = Kusto.Language.Syntax.SyntaxKind;
const KIND_NAME = {};
for (const [k, v] of Object.entries(SyntaxKind)) if (typeof v === "number") KIND_NAME[v] = k;

const ROOT = path.resolve(__dirname, "..", "..");
const SENTINEL = path.join(ROOT, "packs", "sentinel");
const SCHEMA_PATH = path.join(ROOT, "packs", "schema", "keychain_access_events.json");
const rel = (p) => path.relative(ROOT, p);

// ---------------------------------------------------------------------------------------
// Reporting

const errors = [];
let checks = 0;
let failedChecks = 0;
function fail(where, code, message) {
  errors.push({ where, code, message });
}
/** Count one check; its errors (if any) were recorded with fail(). */
function record(ok) {
  checks++;
  if (!ok) failedChecks++;
  return ok;
}
function check(cond, where, message) {
  if (!record(Boolean(cond))) fail(where, "CHECK", message);
  return cond;
}

// ---------------------------------------------------------------------------------------
// Symbols

const TYPE = {
  string: T.String,
  long: T.Long,
  int: T.Int,
  real: T.Real,
  boolean: T.Bool,
  bool: T.Bool,
  datetime: T.DateTime,
  dynamic: T.Dynamic,
  timespan: T.TimeSpan,
  guid: T.Guid,
};
// Kusto.Language's names for the scalar types, back to the names the ARM JSON uses.
const KUSTO_TYPE_NAME = { string: "string", long: "long", int: "int", real: "real", bool: "boolean",
  datetime: "datetime", dynamic: "dynamic", timespan: "timespan", guid: "guid" };

function scalar(typeName) {
  const t = TYPE[String(typeName).toLowerCase()];
  if (!t) throw new Error(`unknown column type ${typeName}`);
  return t;
}
function tableSymbol(name, columns) {
  return new S.TableSymbol.$ctor4(name, columns.map((c) => new S.ColumnSymbol(c.name, scalar(c.type))));
}
function functionSymbol(name, body, description) {
  return new S.FunctionSymbol.$ctor16(name, "()", "{\n" + body + "\n}", description);
}
function globalsWith(symbols) {
  return Kusto.Language.GlobalState.Default.WithDatabase(new S.DatabaseSymbol("sentinel", symbols));
}

// DeviceProcessEvents (Microsoft Defender XDR advanced hunting; in Sentinel with TimeGenerated).
const DEVICE_PROCESS_EVENTS = [
  ["TimeGenerated", "datetime"], ["Timestamp", "datetime"], ["DeviceId", "string"], ["DeviceName", "string"],
  ["ActionType", "string"], ["FileName", "string"], ["FolderPath", "string"], ["SHA1", "string"],
  ["SHA256", "string"], ["MD5", "string"], ["FileSize", "long"], ["ProcessId", "long"],
  ["ProcessCommandLine", "string"], ["ProcessCreationTime", "datetime"], ["AccountDomain", "string"],
  ["AccountName", "string"], ["AccountSid", "string"], ["AccountUpn", "string"], ["AccountObjectId", "string"],
  ["LogonId", "long"], ["InitiatingProcessAccountName", "string"], ["InitiatingProcessFileName", "string"],
  ["InitiatingProcessFolderPath", "string"], ["InitiatingProcessCommandLine", "string"],
  ["InitiatingProcessId", "long"], ["InitiatingProcessParentId", "long"],
  ["InitiatingProcessParentFileName", "string"], ["InitiatingProcessSHA1", "string"],
  ["InitiatingProcessSHA256", "string"], ["InitiatingProcessMD5", "string"],
  ["InitiatingProcessSignerType", "string"], ["InitiatingProcessSignatureStatus", "string"],
  ["ReportId", "long"], ["AdditionalFields", "dynamic"],
].map(([name, type]) => ({ name, type }));

// ---------------------------------------------------------------------------------------
// Parse + type-check

function lineCol(text, offset) {
  const before = text.slice(0, offset).split("\n");
  return `${before.length}:${before[before.length - 1].length + 1}`;
}
/** Parse and analyze; returns {code, diagnostics (errors only)}. */
function analyze(text, globals) {
  const code = Kusto.Language.KustoCode.ParseAndAnalyze(text, globals);
  const diags = Bridge.toArray(code.GetDiagnostics())
    .filter((d) => String(d.Severity) === "Error")
    .map((d) => ({ code: d.Code, message: d.Message, at: lineCol(text, d.Start) }));
  return { code, diags };
}
function resultColumns(code) {
  const rt = code.ResultType;
  if (!rt || !rt.Columns) return null;
  return Bridge.toArray(rt.Columns).map((c) => ({ name: c.Name, type: KUSTO_TYPE_NAME[c.Type.Name] || c.Type.Name }));
}
/** Type-check a query and record its error diagnostics under `where`. */
function validateQuery(where, text, globals) {
  const { code, diags } = analyze(text, globals);
  for (const d of diags) fail(`${where}:${d.at}`, d.code, d.message);
  return { code, ok: record(diags.length === 0) };
}

// ---------------------------------------------------------------------------------------
// Azure Monitor transformations: supported KQL
// Source: learn.microsoft.com "Supported KQL features in Azure Monitor transformations"
// (MicrosoftDocs/azure-monitor-docs articles/azure-monitor/data-collection/
// data-collection-transformations-kql.md, ms.date 01/20/2026). Anything not listed there
// is refused here (fail closed); add a kind only after checking that page.

const TRANSFORM_FUNCTIONS = new Set([
  // Bitwise
  "binary_and", "binary_or", "binary_not", "binary_shift_left", "binary_shift_right", "binary_xor",
  // Conversion
  "tobool", "todatetime", "todouble", "toreal", "toguid", "toint", "tolong", "tostring", "totimespan",
  // DateTime and TimeSpan
  "ago", "datetime_add", "datetime_diff", "datetime_part", "dayofmonth", "dayofweek", "dayofyear",
  "endofday", "endofmonth", "endofweek", "endofyear", "getmonth", "getyear", "hourofday",
  "make_datetime", "make_timespan", "now", "startofday", "startofmonth", "startofweek", "startofyear",
  "weekofyear",
  // Dynamic and array
  "array_concat", "array_length", "pack_array", "pack", "parse_json", "parse_xml", "zip",
  // Mathematical
  "abs", "bin", "floor", "ceiling", "exp", "exp10", "exp2", "isfinite", "isinf", "isnan", "log",
  "log10", "log2", "pow", "round", "sign",
  // Conditional (the page lists iif, not its alias iff)
  "case", "iif", "max_of", "min_of",
  // String
  "base64_encodestring", "base64_decodestring", "countof", "extract", "extract_all", "indexof",
  "isempty", "isnotempty", "split", "strcat", "strcat_delim", "strlen", "substring", "tolower",
  "toupper", "hash_sha256",
  // Type
  "gettype", "isnotnull", "isnull",
  // Transformation-only functions and the columnifexists form the page names
  "parse_cef_dictionary", "geo_location", "columnifexists",
]);

const TRANSFORM_KINDS = new Set([
  // Statements and plumbing: `let`, the `source` tabular expression, names, lists.
  "QueryBlock", "List", "SeparatedElement", "ExpressionStatement", "LetStatement", "PipeExpression",
  "NameDeclaration", "TokenName", "NameReference", "ExpressionList", "SimpleNamedExpression",
  "ParenthesizedExpression", "ElementExpression", "BracketedExpression", "PathExpression",
  "FunctionCallExpression", // the function name is checked against TRANSFORM_FUNCTIONS
  "StringLiteralExpression", "LongLiteralExpression", "IntLiteralExpression", "RealLiteralExpression",
  "BooleanLiteralExpression", "DateTimeLiteralExpression", "TimespanLiteralExpression",
  "GuidLiteralExpression", "NullLiteralExpression",
  // Supported tabular operators: extend, project, print, where, parse, project-away,
  // project-rename, datatable.
  "ExtendOperator", "ProjectOperator", "PrintOperator", "FilterOperator", "ParseOperator",
  "ProjectAwayOperator", "ProjectRenameOperator", "DataTableExpression", "RowSchema",
  "NameAndTypeDeclaration", "PrimitiveTypeExpression",
  // "All numerical operators" and datetime/timespan arithmetic.
  "AddExpression", "SubtractExpression", "MultiplyExpression", "DivideExpression", "ModuloExpression",
  "UnaryMinusExpression", "UnaryPlusExpression", "LessThanExpression", "LessThanOrEqualExpression",
  "GreaterThanExpression", "GreaterThanOrEqualExpression", "EqualExpression", "NotEqualExpression",
  // Logical and/or: not on the page's lists, but `where` with two conditions needs them and the
  // page's own examples are built on where.
  "AndExpression", "OrExpression",
  // The string operators the page lists: == != =~ !~ contains !contains contains_cs
  // !contains_cs has !has has_cs !has_cs startswith !startswith startswith_cs !startswith_cs
  // endswith !endswith endswith_cs !endswith_cs matches regex in !in
  "EqualTildeExpression", "BangTildeExpression", "ContainsExpression", "NotContainsExpression",
  "ContainsCsExpression", "NotContainsCsExpression", "HasExpression", "NotHasExpression",
  "HasCsExpression", "NotHasCsExpression", "StartsWithExpression", "NotStartsWithExpression",
  "StartsWithCsExpression", "NotStartsWithCsExpression", "EndsWithExpression", "NotEndsWithExpression",
  "EndsWithCsExpression", "NotEndsWithCsExpression", "MatchesRegexExpression",
  "InExpression", "NotInExpression", // `in` / `!in` (Kusto.Language calls `in~` InCsExpression)
]);

/** Every syntax kind / function outside the transformation subset. */
function transformViolations(text) {
  const code = Kusto.Language.KustoCode.Parse(text);
  const out = [];
  code.Syntax.WalkNodes(function (node) {
    const kind = KIND_NAME[node.Kind];
    if (!TRANSFORM_KINDS.has(kind)) {
      out.push({ at: lineCol(text, node.TextStart), what: `operator/syntax ${kind}` });
    } else if (kind === "FunctionCallExpression") {
      const fname = node.Name.SimpleName;
      if (!TRANSFORM_FUNCTIONS.has(fname)) out.push({ at: lineCol(text, node.TextStart), what: `function ${fname}()` });
    }
  }, null);
  return out;
}

// ---------------------------------------------------------------------------------------
// Helpers

const readText = (p) => fs.readFileSync(p, "utf8");
const readJson = (p) => JSON.parse(readText(p));
const readYaml = (p) => YAML.parse(readText(p));
const pascal = (name) => name.split("_").map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const norm = (s) => s.replace(/\s+$/gm, "").trim();
/** Drop leading `//` comment lines (and blank lines) of a query file. */
function stripLeadingComments(text) {
  const lines = text.split("\n");
  while (lines.length && (/^\s*\/\//.test(lines[0]) || lines[0].trim() === "")) lines.shift();
  return lines.join("\n");
}
function timespanMinutes(s) {
  const m = /^(\d+)([mhd])$/.exec(String(s));
  if (!m) return NaN;
  return Number(m[1]) * { m: 1, h: 60, d: 1440 }[m[2]];
}

// Names every custom table must not use, and Log Analytics column-name rules
// (Logs Ingestion API overview: reserved names; letters first; at most 45 characters).
const RESERVED_COLUMNS = new Set(["_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"]);

// ---------------------------------------------------------------------------------------
// The checks

const schema = readJson(SCHEMA_PATH);
const PREDICATE = schema.alert_predicate_kql;
const EVENTS_TABLE = "KeychainAccess_CL";
const HEALTH_TABLE = "KeychainAccessHealth_CL";
const PARSER = "KeychainAccessProcessEvents";
const EVENT_QUERIES = ["keychain_credential_access", "keychain_allowlisted_audit", "es_fallback_process_events", "es_fallback_file_events"];
const HEALTH_QUERY = "keychain_access_health";

/**
 * Columns of keychain_access_status: packs/schema/keychain_access_status.json where the Rust
 * side exports it, else the status_columns! declaration in tables/src/status.rs.
 */
function statusColumns() {
  const json = path.join(ROOT, "packs", "schema", "keychain_access_status.json");
  if (fs.existsSync(json)) return readJson(json).columns;
  const rs = readText(path.join(ROOT, "tables", "src", "status.rs"));
  const block = rs.split("status_columns! {")[1].split("\n}")[0];
  const kql = { Text: "string", Integer: "long", BigInt: "long" };
  const cols = [...block.matchAll(/^\s*(\w+): (\w+) = "/gm)].map((m) => ({ name: m[1], kql_type: kql[m[2]] }));
  if (!cols.length) throw new Error("no status columns found in tables/src/status.rs");
  return cols;
}

/** Tables from the ARM template: {name: [{name,type}]}; checks the events table against the schema. */
function checkTables() {
  const file = path.join(SENTINEL, "table-keychainaccess.json");
  const where = rel(file);
  const doc = readJson(file);
  const tables = {};
  for (const res of doc.resources || []) {
    check(res.type === "Microsoft.OperationalInsights/workspaces/tables", where, `resource type ${res.type}`);
    const sch = res.properties.schema;
    check(sch.name.endsWith("_CL"), where, `custom table ${sch.name} must end in _CL`);
    tables[sch.name] = sch.columns.map((c) => ({ name: c.name, type: c.type }));
  }
  for (const name of [EVENTS_TABLE, HEALTH_TABLE]) {
    if (!check(tables[name], where, `table ${name} missing`)) continue;
    const cols = tables[name];
    const names = cols.map((c) => c.name);
    check(new Set(names).size === names.length, where, `${name}: duplicate column names`);
    check(names.includes("TimeGenerated") && cols.find((c) => c.name === "TimeGenerated").type === "datetime",
      where, `${name}: TimeGenerated datetime column required`);
    for (const c of cols) {
      check(!RESERVED_COLUMNS.has(c.name), where, `${name}: reserved column name ${c.name}`);
      check(/^[A-Za-z][A-Za-z0-9_]{0,44}$/.test(c.name), where, `${name}: bad column name ${c.name}`);
      check(TYPE[c.type] !== undefined, where, `${name}: bad type ${c.type} for ${c.name}`);
    }
    for (const env of ["HostName", "HostSerial", "HostUuid", "QueryName"]) {
      check(names.includes(env), where, `${name}: envelope column ${env} missing`);
    }
  }
  // One typed column per status column in the health table.
  const health = tables[HEALTH_TABLE] || [];
  for (const col of statusColumns()) {
    const got = health.find((c) => c.name === pascal(col.name));
    check(got && got.type === col.kql_type, where, `${HEALTH_TABLE}: want ${pascal(col.name)}:${col.kql_type} for status column ${col.name}`);
  }
  // One typed column per schema column, in the schema's KQL type.
  const events = tables[EVENTS_TABLE] || [];
  for (const col of schema.columns) {
    const want = pascal(col.name);
    const got = events.find((c) => c.name === want);
    if (check(got, where, `${EVENTS_TABLE}: no column ${want} for schema column ${col.name}`)) {
      check(got.type === col.kql_type, where, `${EVENTS_TABLE}.${want}: type ${got.type}, schema says ${col.kql_type}`);
    }
  }
  return tables;
}

/** Runs a transform through every check; returns the problems (strings). */
function transformProblems(text, streamColumns, tableColumns) {
  const problems = [];
  const globals = globalsWith([tableSymbol("source", streamColumns)]);
  const { code, diags } = analyze(text, globals);
  for (const d of diags) problems.push(`${d.at} ${d.code} ${d.message}`);
  for (const v of transformViolations(text)) problems.push(`${v.at} not supported in transformations: ${v.what}`);
  if (diags.length === 0 && tableColumns) {
    const out = resultColumns(code) || [];
    const got = out.map((c) => `${c.name}:${c.type}`).sort();
    const want = tableColumns.map((c) => `${c.name}:${String(c.type).toLowerCase()}`).sort();
    const missing = want.filter((x) => !got.includes(x));
    const extra = got.filter((x) => !want.includes(x));
    if (missing.length || extra.length) {
      problems.push(`output differs from the table: missing [${missing.join(", ")}] extra [${extra.join(", ")}]`);
    }
  }
  return problems;
}

/** The result-name regex of a transform, exercised on every name form. */
function checkNameFilter(where, text) {
  const m = /extract\(@"([^"]+)", 1, name\)/.exec(text);
  if (!check(m, where, "transform: no extract(@\"...\", 1, name) result-name filter found")) return;
  const re = new RegExp(m[1]); // RE2 and JS agree on this subset: anchors, groups, classes.
  const queryName = (n) => (n.startsWith("pack") ? (re.exec(n) || [null, ""])[1] : n);
  for (const q of [...EVENT_QUERIES, HEALTH_QUERY]) {
    for (const form of [`pack_keychain-access_${q}`, `pack/Global/${q}`, `pack/Team A/${q}`, `pack/Org/Sub team/${q}`, q]) {
      check(queryName(form) === q, where, `result name ${form} must map to ${q}, got ${queryName(form)}`);
    }
  }
  for (const other of ["pack_other-pack_keychain_credential_access", "pack_keychain-access", "pack/Global/", "processes"]) {
    const got = queryName(other);
    check(![...EVENT_QUERIES, HEALTH_QUERY].includes(got), where, `result name ${other} must not be kept (got ${got})`);
  }
}

function checkDcrs(tables) {
  const transforms = {}; // outputStream -> [text per DCR]
  const files = { direct: "dcr-logs-ingestion.json", ama: "dcr-ama-json-logs.json" };
  for (const [route, name] of Object.entries(files)) {
    const file = path.join(SENTINEL, name);
    const where = rel(file);
    const doc = readJson(file);
    const dcr = (doc.resources || []).find((r) => r.type === "Microsoft.Insights/dataCollectionRules");
    if (!check(dcr, where, "no Microsoft.Insights/dataCollectionRules resource")) continue;
    const props = dcr.properties;
    if (route === "direct") {
      check(dcr.kind === "Direct", where, `kind must be Direct, is ${dcr.kind}`);
    } else {
      check(dcr.kind === "Linux", where, `kind must be Linux (AMA custom JSON logs), is ${dcr.kind}`);
      const lf = ((props.dataSources || {}).logFiles || [])[0] || {};
      check(lf.format === "json", where, "logFiles format must be json");
      let patterns = lf.filePatterns;
      if (typeof patterns === "string") {
        const pm = /^\[parameters\('(\w+)'\)\]$/.exec(patterns);
        patterns = pm ? doc.parameters[pm[1]].defaultValue : [];
      }
      check(patterns.includes("/var/log/osquery/osqueryd.results.log"), where, "filePatterns must include osqueryd.results.log");
      check(patterns.some((p) => /osquery_result/.test(p)), where, "filePatterns must include a Fleet result log path");
    }
    const streams = props.streamDeclarations || {};
    for (const flow of props.dataFlows || []) {
      const streamName = flow.streams[0];
      const stream = streams[streamName];
      if (!check(stream, where, `stream ${streamName} not declared`)) continue;
      const streamCols = stream.columns.map((c) => c.name);
      for (const c of ["name", "hostIdentifier", "calendarTime", "unixTime", "epoch", "counter", "numerics", "decorations", "columns", "action"]) {
        check(streamCols.includes(c), where, `stream ${streamName} lacks osquery result field ${c}`);
      }
      for (const c of ["decorations", "columns"]) {
        const col = stream.columns.find((x) => x.name === c);
        check(col && col.type === "dynamic", where, `stream column ${c} must be dynamic`);
      }
      const table = String(flow.outputStream).replace(/^Custom-/, "");
      check(flow.outputStream === `Custom-${table}` && tables[table], where, `outputStream ${flow.outputStream} is not one of our tables`);
      const fwhere = `${where} (dataFlow -> ${flow.outputStream})`;
      const problems = transformProblems(flow.transformKql, stream.columns, tables[table]);
      for (const p of problems) fail(fwhere, "TRANSFORM", p);
      record(problems.length === 0);
      checkNameFilter(fwhere, flow.transformKql);
      if (table === EVENTS_TABLE) {
        for (const q of EVENT_QUERIES) check(flow.transformKql.includes(`"${q}"`), fwhere, `event query ${q} not kept`);
        // TimeGenerated is the row's own `time`, not the query's unixTime.
        check(/EventTime = tolong\(columns\["time"\]\)/.test(flow.transformKql) &&
          /TimeGenerated = iif\(isnotnull\(EventTime\)/.test(flow.transformKql),
          fwhere, "TimeGenerated must come from columns.time");
        for (const col of schema.columns) {
          check(flow.transformKql.includes(`columns["${col.name}"]`), fwhere, `schema column ${col.name} not typed by the transform`);
        }
      } else {
        check(flow.transformKql.includes(`"${HEALTH_QUERY}"`), fwhere, "health query not kept");
      }
      (transforms[flow.outputStream] = transforms[flow.outputStream] || []).push(flow.transformKql);
    }
  }
  for (const [out, texts] of Object.entries(transforms)) {
    check(texts.length === 2 && texts[0] === texts[1], "packs/sentinel/dcr-*.json", `${out}: both DCRs must run the same transform`);
  }
  check(Object.keys(transforms).length === 2, "packs/sentinel/dcr-*.json", "expected flows to exactly two tables");
}

// Azure-Sentinel .script/tests/detectionTemplateSchemaValidation (EntityMappingIdentifiers.cs).
const ENTITY_IDENTIFIERS = {
  Account: ["Name", "FullName", "NTDomain", "DnsDomain", "UPNSuffix", "Sid", "AadTenantId", "AadUserId", "PUID", "IsDomainJoined", "DisplayName", "ObjectGuid"],
  Host: ["DnsDomain", "NTDomain", "HostName", "FullName", "NetBiosName", "AzureID", "OMSAgentID", "OSFamily", "OSVersion", "IsDomainJoined"],
  Process: ["ProcessId", "CommandLine", "ElevationToken", "CreationTimeUtc"],
  File: ["Directory", "Name"],
};

function checkRule(file, globals) {
  const where = rel(file);
  const rule = readYaml(file);
  for (const key of ["id", "name", "description", "severity", "status", "requiredDataConnectors", "queryFrequency",
    "queryPeriod", "triggerOperator", "triggerThreshold", "tactics", "relevantTechniques", "query", "entityMappings",
    "customDetails", "alertDetailsOverride", "incidentConfiguration", "eventGroupingSettings", "version", "kind"]) {
    check(rule[key] !== undefined, where, `missing key ${key}`);
  }
  check(GUID.test(rule.id), where, "id must be a GUID");
  check(rule.kind === "Scheduled", where, "kind must be Scheduled");
  check(["Informational", "Low", "Medium", "High"].includes(rule.severity), where, "severity");
  check(rule.triggerOperator === "gt" && rule.triggerThreshold === 0, where, "trigger must be gt 0");
  check((rule.tactics || []).includes("CredentialAccess"), where, "tactics must include CredentialAccess");
  check((rule.relevantTechniques || []).includes("T1555.001"), where, "relevantTechniques must include T1555.001");
  check(rule.requiredDataConnectors.every((c) => c.connectorId && (c.dataTypes || []).includes(EVENTS_TABLE)),
    where, `requiredDataConnectors must name ${EVENTS_TABLE}`);
  const freq = timespanMinutes(rule.queryFrequency);
  const period = timespanMinutes(rule.queryPeriod);
  check(freq >= 5 && freq <= 14 * 1440 && period >= 5 && period <= 14 * 1440, where, "queryFrequency/queryPeriod must be 5m..14d");
  check(period >= freq, where, "queryPeriod must be >= queryFrequency");
  check(period < 2 * 1440 || freq >= 60, where, "queryPeriod >= 2d needs queryFrequency >= 1h");
  check(/^\d+\.\d+\.\d+$/.test(String(rule.version)), where, "version must be x.y.z");
  check(rule.query.length <= 10000, where, "query longer than 10000 characters");

  // The rule's query is keychain-credential-access.kql, with the alert predicate, deduped on Eid.
  const improved = readText(path.join(SENTINEL, "keychain-credential-access.kql"));
  check(norm(rule.query) === norm(improved), where, "query must equal keychain-credential-access.kql");
  checkPredicate(where, rule.query);
  check(/summarize\s+arg_m(in|ax)\([^)]*\)\s+by\s+Eid\b/.test(rule.query), where, "query must dedup on Eid");
  const lb = /let lookback = (\w+);/.exec(rule.query);
  const rw = /let runWindow = (\w+);/.exec(rule.query);
  check(lb && lb[1] === rule.queryPeriod, where, "let lookback must equal queryPeriod");
  check(rw && rw[1] === rule.queryFrequency, where, "let runWindow must equal queryFrequency");

  const { code, ok } = validateQuery(`${where} (query)`, rule.query, globals);
  if (!ok) return;
  const out = new Set((resultColumns(code) || []).map((c) => c.name));
  const em = rule.entityMappings || [];
  check(em.length >= 1 && em.length <= 5, where, "1..5 entity mappings");
  for (const type of ["Host", "Account", "Process", "File"]) {
    check(em.some((e) => e.entityType === type), where, `entity mapping for ${type} missing`);
  }
  for (const e of em) {
    const ids = ENTITY_IDENTIFIERS[e.entityType];
    if (!check(ids, where, `unexpected entity type ${e.entityType}`)) continue;
    check(e.fieldMappings.length >= 1 && e.fieldMappings.length <= 3, where, `${e.entityType}: 1..3 field mappings`);
    for (const f of e.fieldMappings) {
      check(ids.includes(f.identifier), where, `${e.entityType}: bad identifier ${f.identifier}`);
      check(out.has(f.columnName), where, `${e.entityType}.${f.identifier}: query has no column ${f.columnName}`);
    }
  }
  const cd = rule.customDetails || {};
  check(Object.keys(cd).length <= 20, where, "at most 20 custom details");
  for (const [k, v] of Object.entries(cd)) {
    check(/^[a-zA-Z]+\w*$/.test(k) && k.length <= 20, where, `custom detail key ${k}`);
    check(/^[a-zA-Z_]+\w*$/.test(v) && out.has(v), where, `custom detail ${k}: query has no column ${v}`);
  }
  const ado = rule.alertDetailsOverride || {};
  for (const key of ["alertDisplayNameFormat", "alertDescriptionFormat"]) {
    const placeholders = [...String(ado[key] || "").matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]);
    check(placeholders.length <= 3, where, `${key}: at most 3 placeholders`);
    for (const p of placeholders) check(out.has(p), where, `${key}: query has no column ${p}`);
  }
  if (ado.alertSeverityColumnName) check(out.has(ado.alertSeverityColumnName), where, "alertSeverityColumnName column missing");
  check(rule.eventGroupingSettings.aggregationKind === "AlertPerResult", where, "aggregationKind AlertPerResult expected");
}

function checkPredicate(where, text) {
  const n = text.split(PREDICATE).length - 1;
  return check(n === 1, where, `must use the alert predicate exactly once: ${PREDICATE} (found ${n})`);
}

function checkHunting(file, globals) {
  const where = rel(file);
  const h = readYaml(file);
  for (const key of ["id", "name", "description", "requiredDataConnectors", "tactics", "relevantTechniques", "query"]) {
    check(h[key] !== undefined, where, `missing key ${key}`);
  }
  check(GUID.test(h.id), where, "id must be a GUID");
  validateQuery(`${where} (query)`, h.query, globals);
}

function checkParser(globalsNoParser) {
  const kqlFile = path.join(SENTINEL, `parser-${PARSER}.kql`);
  const yamlFile = path.join(SENTINEL, `parser-${PARSER}.yaml`);
  const body = readText(kqlFile);
  const y = readYaml(yamlFile);
  check(y.FunctionName === PARSER && y.FunctionAlias === PARSER, rel(yamlFile), "FunctionName/FunctionAlias");
  check(GUID.test(y.id), rel(yamlFile), "id must be a GUID");
  check(norm(y.FunctionQuery) === norm(body), rel(yamlFile), `FunctionQuery must equal ${rel(kqlFile)}`);
  // The body on its own, against the tables.
  const { code, ok } = validateQuery(rel(kqlFile), body, globalsNoParser);
  if (!ok) return;
  const out = resultColumns(code) || [];
  const type = (n) => (out.find((c) => c.name === n) || {}).type;
  const want = {
    Timestamp: "datetime", DeviceName: "string", AccountName: "string", FileName: "string",
    ProcessCommandLine: "string", InitiatingProcessFileName: "string", InitiatingProcessCommandLine: "string",
    KeychainDump: "boolean", PasswordQuery: "boolean", CertExport: "boolean",
    Action: "string", TargetPath: "string", DestinationPath: "string", SigningId: "string", TeamId: "string",
    Signer: "string", Severity: "string", Reason: "string", Allowlisted: "long", AllowReason: "string",
    ParentPath: "string", Ancestors: "dynamic", Eid: "string", IngestionTime: "datetime", TimeGenerated: "datetime",
  };
  for (const [n, t] of Object.entries(want)) check(type(n) === t, rel(kqlFile), `parser column ${n}: want ${t}, got ${type(n)}`);
}

function checkOriginalQuery(globals) {
  const file = path.join(SENTINEL, "original-query-on-parser.kql");
  const where = rel(file);
  const text = readText(file);
  const body = stripLeadingComments(text);
  check(/^KeychainAccessProcessEvents$/m.test(body) && !/DeviceProcessEvents/.test(body), where, "table must be swapped for the parser");
  const seed = body.replace(/^KeychainAccessProcessEvents$/m, "DeviceProcessEvents");
  // The seed itself still type-checks against DeviceProcessEvents.
  validateQuery(`${where} (swapped back to DeviceProcessEvents)`, seed, globals);
  // Verbatim check against the reference copy, where this checkout has shared/ beside it.
  const candidates = [process.env.SEED_QUERY_FILE, path.join(ROOT, "..", "shared", "reference", "original-sentinel-rule.txt"),
    "/work/shared/reference/original-sentinel-rule.txt"].filter(Boolean);
  const ref = candidates.find((p) => fs.existsSync(p));
  if (ref) {
    const m = /^let KeychainCommands[\s\S]*?sort by Timestamp desc$/m.exec(readText(ref));
    check(m && norm(m[0]) === norm(seed), where, `must be the seed query of ${ref} verbatim, table swapped`);
  } else {
    console.log(`note: seed reference not found (set SEED_QUERY_FILE); verbatim comparison skipped`);
  }
}

// ---------------------------------------------------------------------------------------
// Negative self-test: each check must be able to fail.

function selfTest(globals, tables, streamColumns) {
  const cases = [];
  const diagCount = (q) => analyze(q, globals).diags.length;
  cases.push(["unknown column", diagCount(`${EVENTS_TABLE} | where NoSuchColumn == 1`) > 0]);
  cases.push(["missing paren", diagCount(`${EVENTS_TABLE} | where (Severity == "high"`) > 0]);
  cases.push(["unknown table", diagCount(`NoSuchTable_CL | take 1`) > 0]);
  cases.push(["parser column typo", diagCount(`${PARSER} | project ProcessCommandLin`) > 0]);
  const good = "source | where name == \"x\" | project TimeGenerated = now(), HostName = hostIdentifier";
  cases.push(["transform baseline accepted", transformViolations(good).length === 0]);
  cases.push(["transform summarize refused", transformViolations("source | summarize count() by name").length > 0]);
  cases.push(["transform coalesce() refused", transformViolations("source | extend x = coalesce(name, action)").length > 0]);
  cases.push(["transform has_any refused", transformViolations("source | where name has_any (\"a\")").length > 0]);
  cases.push(["transform iff() refused (page lists iif)", transformViolations("source | extend x = iff(true, 1, 2)").length > 0]);
  cases.push(["transform dynamic literal refused", transformViolations("source | extend x = dynamic([1])").length > 0]);
  cases.push(["transform output mismatch caught",
    transformProblems("source | project TimeGenerated = now()", streamColumns, tables[EVENTS_TABLE]).length > 0]);
  const saved = [errors.length, checks, failedChecks];
  checkPredicate("self-test", "T | where Severity in (\"medium\", \"high\") and Allowlisted == false");
  cases.push(["missing predicate caught", errors.length === saved[0] + 1]);
  [errors.length, checks, failedChecks] = saved;
  let ok = true;
  for (const [name, passed] of cases) {
    if (!record(passed)) {
      ok = false;
      fail("self-test", "SELFTEST", `negative self-test did not behave: ${name}`);
    }
  }
  console.log(`self-test: ${cases.length} cases, ${ok ? "all caught" : "FAILED"}`);
}

// ---------------------------------------------------------------------------------------

function main() {
  const tables = checkTables();
  const tableSyms = Object.entries(tables).map(([n, cols]) => tableSymbol(n, cols));
  const dpe = tableSymbol("DeviceProcessEvents", DEVICE_PROCESS_EVENTS);
  const parserBody = readText(path.join(SENTINEL, `parser-${PARSER}.kql`));
  const globalsNoParser = globalsWith([...tableSyms, dpe]);
  const globals = globalsWith([...tableSyms, dpe, functionSymbol(PARSER, parserBody, "keychain_access_events rows, DeviceProcessEvents-shaped")]);
  const direct = readJson(path.join(SENTINEL, "dcr-logs-ingestion.json"));
  const streamColumns = Object.values(direct.resources[0].properties.streamDeclarations)[0].columns;

  selfTest(globals, tables, streamColumns);

  checkDcrs(tables);
  checkParser(globalsNoParser);
  checkOriginalQuery(globals);

  // The improved query: exactly the alert predicate.
  const improvedFile = path.join(SENTINEL, "keychain-credential-access.kql");
  checkPredicate(rel(improvedFile), readText(improvedFile));

  // Every .kql and every query in the YAML files under packs/sentinel.
  const files = fs.readdirSync(SENTINEL).sort();
  let queries = 0;
  for (const f of files) {
    const file = path.join(SENTINEL, f);
    if (f.endsWith(".kql")) {
      queries++;
      if (f === `parser-${PARSER}.kql`) continue; // checkParser() validated it
      validateQuery(rel(file), readText(file), globals);
    } else if (f.endsWith(".yaml") || f.endsWith(".yml")) {
      const doc = readYaml(file);
      if (doc.FunctionQuery !== undefined) {
        queries++;
        validateQuery(`${rel(file)} (FunctionQuery)`, doc.FunctionQuery, globalsNoParser);
      } else if (doc.kind === "Scheduled" || doc.kind === "NRT") {
        queries++;
        checkRule(file, globals);
      } else if (doc.query !== undefined) {
        queries++;
        checkHunting(file, globals);
      } else {
        check(false, rel(file), "no query, FunctionQuery or rule kind found");
      }
    }
  }
  check(queries >= 8, "packs/sentinel", `expected at least 8 queries, found ${queries}`);

  for (const e of errors) console.log(`ERROR ${e.where}: ${e.code} ${e.message}`);
  console.log(`kql: ${queries} queries and 2 DCRs validated, ${errors.length} error(s)`);
  console.log(`${checks - failedChecks} passed, ${failedChecks} failed`);
  process.exit(errors.length || failedChecks ? 1 : 0);
}

main();
