#!/usr/bin/env python3
"""Generate the Sentinel table and DCR ARM templates from the schema JSON.

The column list of `keychain_access_events` is declared once, in Rust, and
exported to packs/schema/keychain_access_events.json. This script turns that
file into:

  table-keychainaccess.json   the two custom tables (ARM)
  dcr-logs-ingestion.json     DCR kind Direct, for the Logs Ingestion API
  dcr-ama-json-logs.json      DCR for Azure Monitor Agent "Custom JSON Logs"
                              (a Linux host tailing osqueryd's or Fleet's
                              filesystem results log)
  ../sigma/pipelines/keychain_access_cl.yml
                              pySigma pipeline: keychain_access_events column
                              names to KeychainAccess_CL's (Sigma to KQL)
  KqlvalidationsTests/CustomTables/<Table>.json
                              the two tables in the shape Azure-Sentinel's
                              KQL validation tests read
                              (.script/tests/KqlvalidationsTests/CustomTables:
                              {"Name", "Properties": [{"Name", "Type"}]})

Both DCRs run the same two transforms: result rows of the pack's event queries
go to KeychainAccess_CL, rows of the health query to KeychainAccessHealth_CL.

Usage (python3, standard library only):
  python3 packs/sentinel/build_sentinel_artifacts.py          # rewrite files
  python3 packs/sentinel/build_sentinel_artifacts.py --check  # exit 1 if stale

tests/kql/validate.js checks the generated files independently (columns
against the schema JSON, transforms parsed, type-checked and held to the
operators Azure Monitor transformations support).
"""

import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
SCHEMA = HERE.parent / "schema" / "keychain_access_events.json"

# Azure-Sentinel's KQL validation tests read custom table schemas from this layout.
KQL_TABLES = HERE / "KqlvalidationsTests" / "CustomTables"
SIGMA_KQL_PIPELINE = HERE.parent / "sigma" / "pipelines" / "keychain_access_cl.yml"

EVENTS_TABLE = "KeychainAccess_CL"
HEALTH_TABLE = "KeychainAccessHealth_CL"

# osquery schedules a pack query as pack_<pack>_<query> (delimiter `_`); Fleet
# names it pack/Global/<query> or pack/<team>/<query>, and a plain Fleet query
# keeps its own name. The regex keeps the <query> part of the first two forms.
PACK_NAME = "keychain-access"
PACK_NAME_REGEX = r"^pack(?:_" + PACK_NAME + r"_|/.+/)([^/]+)$"
EVENT_QUERIES = [
    "keychain_credential_access",
    "keychain_allowlisted_audit",
    "es_fallback_process_events",
    "es_fallback_file_events",
]
HEALTH_QUERY = "keychain_access_health"

# Columns of the `keychain_access_status` table (the health query selects it):
# packs/schema/keychain_access_status.json where the Rust side exports one (same shape as
# keychain_access_events.json), else the status_columns! declaration in tables/src/status.rs.
STATUS_SCHEMA = HERE.parent / "schema" / "keychain_access_status.json"
STATUS_RS = HERE.parent.parent / "tables" / "src" / "status.rs"
KQL_TYPE = {"Text": "string", "Integer": "long", "BigInt": "long"}


def load_status_columns():
    """[(name, kql_type, description)] of keychain_access_status."""
    if STATUS_SCHEMA.exists():
        doc = json.loads(STATUS_SCHEMA.read_text())
        return [(c["name"], c["kql_type"], c["description"]) for c in doc["columns"]]
    block = STATUS_RS.read_text().split("status_columns! {", 1)[1].split("\n}", 1)[0]
    cols = re.findall(r'^\s*(\w+): (\w+) = "((?:[^"\\]|\\.)*)",?\s*$', block, re.M)
    if not cols:
        raise SystemExit(f"no status columns found in {STATUS_RS}")
    return [(name, KQL_TYPE[kind], desc.replace('\\"', '"')) for name, kind, desc in cols]


# Columns of one osquery result line as osqueryd (filesystem logger) and Fleet
# (filesystem/stdout result log plugins) write it, in event format.
STREAM_COLUMNS = [
    ("name", "string"),
    ("hostIdentifier", "string"),
    ("calendarTime", "string"),
    ("unixTime", "long"),
    ("epoch", "long"),
    ("counter", "long"),
    ("numerics", "boolean"),
    ("decorations", "dynamic"),
    ("columns", "dynamic"),
    ("action", "string"),
]
# The AMA route adds what the agent fills in itself.
AMA_EXTRA_STREAM_COLUMNS = [
    ("TimeGenerated", "datetime"),
    ("FilePath", "string"),
    ("Computer", "string"),
]
DIRECT_STREAM = "Custom-OsqueryResultLine"
AMA_STREAM = "Custom-OsqueryResultFile"

AMA_FILE_PATTERNS = [
    "/var/log/osquery/osqueryd.results.log",  # osqueryd --logger_plugin=filesystem
    "/var/log/fleet/osquery_result",          # Fleet FLEET_FILESYSTEM_RESULT_LOG_FILE (recommended)
    "/tmp/osquery_result",                    # Fleet's default result log file
]

# Columns both tables carry, taken from the result line's envelope.
ENVELOPE_COLUMNS = [
    ("HostName", "string", "decorations.hostname, else hostIdentifier."),
    ("HostSerial", "string", "decorations.hardware_serial."),
    ("HostUuid", "string", "decorations.uuid, else decorations.host_uuid (Fleet's decorator)."),
    ("HostIdentifier", "string", "hostIdentifier as osquery logged it."),
    ("QueryName", "string", "The pack query's own name, without the pack prefix."),
    ("ResultName", "string", "`name` as logged (pack_keychain-access_<q>, pack/<team>/<q> or <q>)."),
    ("LogAction", "string", "osquery's `action` (`added`, `snapshot`); `removed` rows are dropped."),
    ("QueryTime", "datetime", "When the query ran (unixTime)."),
    ("Epoch", "long", "osquery `epoch`."),
    ("Counter", "long", "osquery `counter` (0 on a query's first run)."),
    ("CollectorHost", "string", "AMA route: the Linux host whose file was read; empty otherwise."),
    ("CollectorFilePath", "string", "AMA route: the results file read; empty otherwise."),
]


def pascal(name):
    """time -> Time, parent_pidversion -> ParentPidversion."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def load_schema():
    return json.loads(SCHEMA.read_text())


def epoch_to_datetime(expr):
    return f'datetime_add("second", {expr}, datetime(1970-01-01))'


def json_value(column, kql_type):
    """The KQL that types one value of the `columns` bag (values are strings)."""
    value = f'columns["{column}"]'
    if kql_type == "long":
        return f"tolong({value})"
    if kql_type == "string":
        return f"tostring({value})"
    raise ValueError(f"unhandled KQL type {kql_type} for {column}")


def envelope_projection(time_generated):
    hostname = 'tostring(decorations["hostname"])'
    uuid = 'tostring(decorations["uuid"])'
    return [
        f"TimeGenerated = {time_generated}",
        f"HostName = iif(isnotempty({hostname}), {hostname}, hostIdentifier)",
        'HostSerial = tostring(decorations["hardware_serial"])',
        f'HostUuid = iif(isnotempty({uuid}), {uuid}, tostring(decorations["host_uuid"]))',
        "HostIdentifier = hostIdentifier",
        "QueryName",
        "ResultName = name",
        "LogAction = action",
        f"QueryTime = {epoch_to_datetime('RunTime')}",
        "Epoch = tolong(epoch)",
        "Counter = tolong(counter)",
        'CollectorHost = tostring(columnifexists("Computer", ""))',
        'CollectorFilePath = tostring(columnifexists("FilePath", ""))',
    ]


def transform_head(query_filter):
    return [
        "source",
        f'| extend QueryName = iif(name startswith "pack", extract(@"{PACK_NAME_REGEX}", 1, name), name)',
        f"| where {query_filter}",
        '| where action != "removed"',
    ]


def events_transform(schema):
    names = ", ".join(f'"{q}"' for q in EVENT_QUERIES)
    lines = transform_head(f"QueryName in ({names})")
    lines.append('| extend EventTime = tolong(columns["time"]), RunTime = tolong(unixTime)')
    time_generated = (
        f"iif(isnotnull(EventTime), {epoch_to_datetime('EventTime')}, "
        f"{epoch_to_datetime('RunTime')})"
    )
    proj = envelope_projection(time_generated)
    proj.append(
        'AdditionalFields = iif(QueryName startswith "es_fallback_", columns, parse_json("{}"))'
    )
    for col in schema["columns"]:
        proj.append(f"{pascal(col['name'])} = {json_value(col['name'], col['kql_type'])}")
    return "\n".join(lines + ["| project\n    " + ",\n    ".join(proj)])


def health_transform():
    lines = transform_head(f'QueryName == "{HEALTH_QUERY}"')
    lines.append("| extend RunTime = tolong(unixTime)")
    proj = envelope_projection(epoch_to_datetime("RunTime"))
    for name, kql_type, _ in load_status_columns():
        proj.append(f"{pascal(name)} = {json_value(name, kql_type)}")
    return "\n".join(lines + ["| project\n    " + ",\n    ".join(proj)])


def table_columns_events(schema):
    cols = [{"name": "TimeGenerated", "type": "datetime",
             "description": "Event time: the row's own `time` (unix seconds); the query run time only when the row has none."}]
    cols += [{"name": n, "type": t, "description": d} for n, t, d in ENVELOPE_COLUMNS]
    cols.append({"name": "AdditionalFields", "type": "dynamic",
                 "description": "es_fallback_* rows: the raw `columns` bag (their columns differ from keychain_access_events)."})
    for col in schema["columns"]:
        cols.append({"name": pascal(col["name"]), "type": col["kql_type"],
                     "description": f"`{col['name']}`: {col['description']}"})
    return cols


def table_columns_health():
    cols = [{"name": "TimeGenerated", "type": "datetime", "description": "When the health query ran (unixTime)."}]
    cols += [{"name": n, "type": t, "description": d} for n, t, d in ENVELOPE_COLUMNS]
    for name, kql_type, desc in load_status_columns():
        cols.append({"name": pascal(name), "type": kql_type, "description": f"`{name}`: {desc}"})
    return cols


# Columns Log Analytics adds to every table, queryable but not declared in the table's
# schema (learn.microsoft.com "Standard columns in Azure Monitor Logs"). The KQL
# validation schema lists them so queries that use them type-check, as upstream's
# CustomTables files do for TenantId, Type and _ResourceId.
STANDARD_COLUMNS = [
    ("TenantId", "string"),
    ("Type", "string"),
    ("_ResourceId", "string"),
    ("_SubscriptionId", "string"),
    ("_ItemId", "string"),
    ("_TimeReceived", "datetime"),
    ("_IsBillable", "string"),
    ("_BilledSize", "real"),
]


def kql_validation_table(name, columns):
    """One table as Azure-Sentinel's KqlvalidationsTests/CustomTables/<Table>.json holds it."""
    props = [{"Name": c["name"], "Type": c["type"]} for c in columns]
    props += [{"Name": n, "Type": t} for n, t in STANDARD_COLUMNS]
    return {"Name": name, "Properties": props}


ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def table_template(schema):
    def table(name, description, columns):
        return {
            "type": "Microsoft.OperationalInsights/workspaces/tables",
            "apiVersion": "2022-10-01",
            "name": f"[concat(parameters('workspaceName'), '/{name}')]",
            "properties": {
                "plan": "Analytics",
                "schema": {"name": name, "description": description, "columns": columns},
            },
        }

    return {
        "$schema": ARM_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": (
                "Custom tables for keychain_access_events (macOS Keychain credential access, "
                "MITRE T1555.001) collected by osquery/Fleet. Generated by "
                "packs/sentinel/build_sentinel_artifacts.py from packs/schema/keychain_access_events.json; "
                "do not edit by hand. Deploy before the DCRs."
            )
        },
        "parameters": {
            "workspaceName": {"type": "string", "metadata": {"description": "Log Analytics workspace (Microsoft Sentinel) name."}}
        },
        "resources": [
            table(EVENTS_TABLE,
                  "keychain_access_events rows (one typed column per schema column) from the keychain-access pack's event queries.",
                  table_columns_events(schema)),
            table(HEALTH_TABLE,
                  "keychain_access_status rows from the keychain-access pack's health query.",
                  table_columns_health()),
        ],
    }


def data_flows(stream, schema):
    return [
        {"streams": [stream], "destinations": ["sentinelWorkspace"],
         "transformKql": events_transform(schema), "outputStream": f"Custom-{EVENTS_TABLE}"},
        {"streams": [stream], "destinations": ["sentinelWorkspace"],
         "transformKql": health_transform(), "outputStream": f"Custom-{HEALTH_TABLE}"},
    ]


def stream_columns(extra=()):
    return [{"name": n, "type": t} for n, t in list(extra) + STREAM_COLUMNS]


def common_parameters():
    return {
        "dataCollectionRuleName": {"type": "string", "metadata": {"description": "Name of the data collection rule."}},
        "location": {"type": "string", "defaultValue": "[resourceGroup().location]",
                     "metadata": {"description": "Region: the workspace's region."}},
        "workspaceResourceId": {"type": "string",
                                "metadata": {"description": "Resource id of the Log Analytics workspace that holds the tables."}},
    }


def destinations():
    return {"logAnalytics": [{"workspaceResourceId": "[parameters('workspaceResourceId')]", "name": "sentinelWorkspace"}]}


def dcr_direct_template(schema):
    return {
        "$schema": ARM_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": (
                "DCR (kind Direct, no DCE needed) for the Logs Ingestion API: POST osquery result lines, "
                f"exactly as logged, as a JSON array to the stream {DIRECT_STREAM}. "
                "Generated by packs/sentinel/build_sentinel_artifacts.py; do not edit by hand."
            )
        },
        "parameters": common_parameters(),
        "resources": [{
            "type": "Microsoft.Insights/dataCollectionRules",
            "apiVersion": "2023-03-11",
            "name": "[parameters('dataCollectionRuleName')]",
            "location": "[parameters('location')]",
            "kind": "Direct",
            "properties": {
                "description": "osquery keychain-access pack results -> KeychainAccess_CL / KeychainAccessHealth_CL",
                "streamDeclarations": {DIRECT_STREAM: {"columns": stream_columns()}},
                "destinations": destinations(),
                "dataFlows": data_flows(DIRECT_STREAM, schema),
            },
        }],
        "outputs": {
            "immutableId": {"type": "string",
                            "value": "[reference(resourceId('Microsoft.Insights/dataCollectionRules', parameters('dataCollectionRuleName')), '2023-03-11').immutableId]"},
            "logsIngestionEndpoint": {"type": "string",
                                      "value": "[reference(resourceId('Microsoft.Insights/dataCollectionRules', parameters('dataCollectionRuleName')), '2023-03-11').endpoints.logsIngestion]"},
            "streamName": {"type": "string", "value": DIRECT_STREAM},
        },
    }


def dcr_ama_template(schema):
    params = common_parameters()
    params["dataCollectionEndpointId"] = {
        "type": "string", "defaultValue": "",
        "metadata": {"description": "Resource id of a data collection endpoint, where your setup needs one (private link); empty for none."},
    }
    params["filePatterns"] = {
        "type": "array", "defaultValue": AMA_FILE_PATTERNS,
        "metadata": {"description": "Results files on the Linux collector (osqueryd filesystem logger, Fleet filesystem result log)."},
    }
    return {
        "$schema": ARM_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": (
                "DCR for Azure Monitor Agent 'Custom JSON Logs' on a Linux host (AMA does not run on macOS): "
                "tails osqueryd's or Fleet's filesystem results log (one JSON result line per line). "
                "Associate it with the collector VM/Arc machine. Same transforms as dcr-logs-ingestion.json. "
                "Generated by packs/sentinel/build_sentinel_artifacts.py; do not edit by hand."
            )
        },
        "parameters": params,
        "resources": [{
            "type": "Microsoft.Insights/dataCollectionRules",
            "apiVersion": "2023-03-11",
            "name": "[parameters('dataCollectionRuleName')]",
            "location": "[parameters('location')]",
            "kind": "Linux",
            "properties": {
                "description": "osquery/Fleet results file -> KeychainAccess_CL / KeychainAccessHealth_CL",
                "dataCollectionEndpointId": "[if(empty(parameters('dataCollectionEndpointId')), null(), parameters('dataCollectionEndpointId'))]",
                "streamDeclarations": {AMA_STREAM: {"columns": stream_columns(AMA_EXTRA_STREAM_COLUMNS)}},
                "dataSources": {"logFiles": [{
                    "name": "osqueryResultsLog",
                    "streams": [AMA_STREAM],
                    "filePatterns": "[parameters('filePatterns')]",
                    "format": "json",
                }]},
                "destinations": destinations(),
                "dataFlows": data_flows(AMA_STREAM, schema),
            },
        }],
    }


def sigma_kql_pipeline(schema):
    """pySigma processing pipeline (YAML text): table columns -> KeychainAccess_CL columns."""
    lines = [
        "# pySigma processing pipeline: Sigma rules over keychain_access_events columns -> the",
        f"# {EVENTS_TABLE} table in Microsoft Sentinel (its PascalCase columns). Chain it after",
        "# keychain_access_events.yml, which maps SigmaHQ's macOS fields onto the table's columns:",
        "#   sigma convert -t kusto -p packs/sigma/pipelines/keychain_access_events.yml \\",
        "#       -p packs/sigma/pipelines/keychain_access_cl.yml RULE",
        f"# and run the result as `{EVENTS_TABLE} | where <expression>`.",
        "# Generated by packs/sentinel/build_sentinel_artifacts.py from",
        "# packs/schema/keychain_access_events.json; do not edit by hand.",
        "name: keychain_access_cl",
        "priority: 30",
        "transformations:",
        "    - id: keychain_access_cl_table",
        "      type: set_state",
        "      key: query_table",
        f"      val: {EVENTS_TABLE}",
        "    - id: keychain_access_cl_columns",
        "      type: field_name_mapping",
        "      mapping:",
    ]
    lines += [f"          {c['name']}: {pascal(c['name'])}" for c in schema["columns"]]
    return "\n".join(lines) + "\n"


def render(doc):
    return json.dumps(doc, indent=2) + "\n"


def outputs():
    schema = load_schema()
    return {
        HERE / "table-keychainaccess.json": render(table_template(schema)),
        HERE / "dcr-logs-ingestion.json": render(dcr_direct_template(schema)),
        HERE / "dcr-ama-json-logs.json": render(dcr_ama_template(schema)),
        KQL_TABLES / f"{EVENTS_TABLE}.json": render(kql_validation_table(EVENTS_TABLE, table_columns_events(schema))),
        SIGMA_KQL_PIPELINE: sigma_kql_pipeline(schema),
        KQL_TABLES / f"{HEALTH_TABLE}.json": render(kql_validation_table(HEALTH_TABLE, table_columns_health())),
    }


def main(argv):
    check = "--check" in argv
    stale = []
    for path, text in outputs().items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(HERE.parent)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale (run python3 packs/sentinel/build_sentinel_artifacts.py): " + ", ".join(stale))
        return 1
    if check:
        print("sentinel ARM templates are up to date with the schema JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
