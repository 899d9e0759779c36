"""Unit tests of the spec layer: YAML → validated, normalised SourceSpec.

Offline and fast: every spec is written to a tmp file and loaded with
`load_spec_file`, exactly as the code location loads the spec folder.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from rest_assets.dialect import SecretRef, load_spec_dirs, load_spec_file, spec_dirs_from_env
from rest_assets.dialect.loader import BUNDLED_SOURCES_DIR
from rest_assets.dialect.validate import build_source_spec
from rest_assets.dialect.yaml_source import parse_yaml
from rest_assets.errors import SpecError, StopConditionError

FILE_NAME = "orders_api.yaml"
BASE = "client: {base_url: https://api.example.com}\n"


def _yaml(text: str) -> str:
    """Drop blank lines and dedent the indented part (unindented prefix lines such as BASE stay)."""
    lines = [line for line in text.splitlines() if line.strip()]
    indents = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip() and line.startswith(" ")]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] if line.startswith(" " * cut) else line for line in lines).rstrip(" ") + "\n"


def write_spec(directory: Path, text: str, name: str = FILE_NAME) -> Path:
    path = directory / name
    path.write_text(_yaml(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, name: str = FILE_NAME):
    return load_spec_file(write_spec(tmp_path, text, name))


@dataclass(frozen=True)
class Bad:
    """A broken spec: the exception, a regex its message matches, and where it points."""

    yaml: str
    exc: type[Exception]
    regex: str
    line: int | None = None
    resource: str | None = None
    key: str | None = None


BAD_SPECS = {
    # ---- unknown keys at every level, each with a "did you mean" ----
    "unknown-top": Bad(
        BASE + "resourcs: []\nresources: [x]\n",
        SpecError,
        r"unknown key 'resourcs'\. Did you mean 'resources'\? Allowed here: .*client",
        2,
        None,
        "resourcs",
    ),
    "unknown-client": Bad(
        """
        client:
          base_url: https://api.example.com
          timout: 3
        resources: [x]
        """,
        SpecError,
        r"unknown key 'timout'\. Did you mean 'timeout'\?",
        3,
        None,
        "client.timout",
    ),
    "unknown-resource": Bad(
        BASE
        + """
        resources:
          - name: orders
            primary_kye: id
        """,
        SpecError,
        r"unknown key 'primary_kye'\. Did you mean 'primary_key'\?",
        4,
        "orders",
        "primary_kye",
    ),
    "unknown-endpoint": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              pth: /orders
        """,
        SpecError,
        r"unknown key 'pth'\. Did you mean 'path'\?",
        5,
        "orders",
        "endpoint.pth",
    ),
    "unknown-paginator": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              paginator:
                type: offset
                limt: 10
        """,
        SpecError,
        r"unknown key 'limt'\. Did you mean 'limit'\?",
        7,
        "orders",
        "endpoint.paginator.limt",
    ),
    "unknown-auth-client": Bad(
        """
        client:
          base_url: https://api.example.com
          auth: {type: bearer, tokn: abc}
        resources: [x]
        """,
        SpecError,
        r"unknown key 'tokn'\. Did you mean 'token'\?",
        3,
        None,
        "client.auth.tokn",
    ),
    "unknown-auth-endpoint": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              auth:
                type: api_key
                api_key: {secret: key}
                nmae: X-Key
        """,
        SpecError,
        r"unknown key 'nmae'\. Did you mean 'name'\?",
        8,
        "orders",
        "endpoint.auth.nmae",
    ),
    "unknown-error-handler": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              error_handler:
                max_retrys: 3
        """,
        SpecError,
        r"unknown key 'max_retrys'\. Did you mean 'max_retries'\?",
        6,
        "orders",
        "endpoint.error_handler.max_retrys",
    ),
    "unknown-incremental": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              incremental:
                cursor_path: updated_at
                start_parm: since
        """,
        SpecError,
        r"unknown key 'start_parm'\. Did you mean 'start_param'\?",
        7,
        "orders",
        "endpoint.incremental.start_parm",
    ),
    "unknown-partition-router": Bad(
        BASE
        + """
        resources:
          - shops
          - name: orders
            endpoint:
              path: "/shops/{{ stream_partition['shop'] }}/orders"
              partition_router:
                parent: shops
                parent_kye: id
        """,
        SpecError,
        r"unknown key 'parent_kye'\. Did you mean 'parent_key'\?",
        9,
        "orders",
        "endpoint.partition_router.parent_kye",
    ),
    "unknown-freshness-resource": Bad(
        BASE
        + """
        resources:
          - name: orders
            freshness:
              fail_windw: 1d
        """,
        SpecError,
        r"unknown key 'fail_windw'\. Did you mean 'fail_window'\?",
        5,
        "orders",
        "freshness.fail_windw",
    ),
    "unknown-freshness-defaults": Bad(
        BASE
        + """
        resource_defaults:
          freshness: {fail_window: 1d, warn_windo: 1h}
        resources: [x]
        """,
        SpecError,
        r"Did you mean 'warn_window'\?",
        3,
        None,
        "resource_defaults.freshness.warn_windo",
    ),
    # ---- wrong types ----
    "type-client-list": Bad("client: [1]\nresources: [x]\n", SpecError, r"must be a mapping, got a list", 1, None, "client"),
    "type-resources-mapping": Bad(BASE + "resources: {a: 1}\n", SpecError, r"must be a non-empty list", 2, None, "resources"),
    "type-endpoint-int": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint: 5
        """,
        SpecError,
        r"must be a mapping, got int",
        4,
        "orders",
        "endpoint",
    ),
    "type-params-list": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              params: [1, 2]
        """,
        SpecError,
        r"must be a mapping",
        5,
        "orders",
        "endpoint.params",
    ),
    "type-max-retries": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              error_handler: {max_retries: many}
        """,
        SpecError,
        r"must be an integer from 0 to 50",
        5,
        "orders",
        "endpoint.error_handler.max_retries",
    ),
    "type-limit-negative": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              paginator: {type: offset, limit: -1}
        """,
        SpecError,
        r"must be a non-negative integer",
        5,
        "orders",
        "endpoint.paginator.limit",
    ),
    "type-timeout": Bad(
        "client: {base_url: https://api.example.com, timeout: fast}\nresources: [x]\n",
        SpecError,
        r"must be a positive number",
        1,
        None,
        "client.timeout",
    ),
    "max-response-mib-not-positive": Bad(
        "client: {base_url: https://api.example.com, max_response_mib: 0}\nresources: [x]\n",
        SpecError,
        r"must be a positive number",
        1,
        None,
        "client.max_response_mib",
    ),
    "type-resource-name": Bad(
        BASE + "resources:\n  - name: [a]\n", SpecError, r"needs a 'name' that is an identifier", 3, None, "resources.0.name"
    ),
    # ---- base_url ----
    "missing-base-url": Bad(
        "client: {}\nresources: [x]\n", SpecError, r"is required: an http\(s\) URL", 1, None, "client.base_url"
    ),
    "base-url-not-http": Bad(
        "client: {base_url: ftp://files.example.com}\nresources: [x]\n",
        SpecError,
        r"is required: an http\(s\) URL",
        1,
        None,
        "client.base_url",
    ),
    # ---- names and duplicate keys ----
    "duplicate-resource-name": Bad(
        BASE
        + """
        resources:
          - orders
          - name: shops
          - name: orders
        """,
        SpecError,
        r"duplicate resource name \(first defined as resources\[0\]\)",
        5,
        "orders",
        "name",
    ),
    "resource-names-share-a-table": Bad(
        BASE
        + """
        resources:
          - users
          - name: Users
        """,
        SpecError,
        r"collides with 'users' \(resources\[0\]\): both would load into table 'users'",
        4,
        "Users",
        "name",
    ),
    "column-names-share-a-column": Bad(
        BASE
        + """
        resources:
          - name: users
            columns: {userId: {data_type: text}, user_id: {data_type: text}}
        """,
        SpecError,
        r"column 'user_id' collides with 'userId': both would load into column 'user_id'",
        4,
        "users",
        "columns.user_id",
    ),
    "column-list-names-share-a-column": Bad(
        BASE
        + """
        resources:
          - name: users
            columns: [{name: userId, data_type: text}, {name: user_id, data_type: text}]
        """,
        SpecError,
        r"column 'user_id' collides with 'userId'",
        None,
        "users",
        "columns.user_id",
    ),
    "processing-step-filter-calls": Bad(
        BASE
        + """
        resources:
          - name: orders
            processing_steps:
              - filter: "open('x') == 1"
        """,
        SpecError,
        r"the only call allowed is \.get",
        5,
        "orders",
        "processing_steps.0.filter",
    ),
    "processing-step-unknown-kind": Bad(
        BASE
        + """
        resources:
          - name: orders
            processing_steps: [{transform: x}]
        """,
        SpecError,
        r"each step is one key, filter or map",
        4,
        "orders",
        "processing_steps.0",
    ),
    "processing-step-map-unknown-key": Bad(
        BASE
        + """
        resources:
          - name: orders
            processing_steps: [{map: {delete: [a]}}]
        """,
        SpecError,
        r"a map is a mapping of drop, rename, keep",
        4,
        "orders",
        "processing_steps.0.map",
    ),
    "processing-step-yield-map-in-yaml": Bad(
        BASE
        + """
        resources:
          - name: orders
            processing_steps: [{yield_map: x}]
        """,
        SpecError,
        r"yield_map takes a Python generator function",
        4,
        "orders",
        "processing_steps.0.yield_map",
    ),
    "columns-empty-name": Bad(
        BASE + "resource_defaults: {columns: {'': 0}}\nresources: [x]\n",
        SpecError,
        r"a column name is a non-empty string, its hints a mapping",
        2,
        None,
        "resource_defaults.columns.",
    ),
    "columns-list-of-numbers": Bad(
        BASE + "resources:\n  - name: x\n    columns: [0]\n",
        SpecError,
        r"must be a mapping of column name to dlt column hints, or a list",
        4,
        "x",
        "columns.0",
    ),
    "duplicate-yaml-key-top": Bad(
        BASE + "resources: [x]\nresources: [y]\n", SpecError, r"duplicate key 'resources'", 3, None, "resources"
    ),
    "duplicate-yaml-key-resource": Bad(
        BASE
        + """
        resources:
          - name: orders
            primary_key: id
            primary_key: order_id
        """,
        SpecError,
        r"duplicate key 'primary_key'",
        5,
        "orders",
        "primary_key",
    ),
    # ---- unknown types list what is allowed ----
    "unknown-paginator-type": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              paginator: {type: offsett}
        """,
        SpecError,
        r"unknown paginator type 'offsett'; allowed: auto, cursor, .*offset, page_number, single_page",
        5,
        "orders",
        "endpoint.paginator.type",
    ),
    "unknown-auth-type": Bad(
        """
        client:
          base_url: https://api.example.com
          auth: {type: magic}
        resources: [x]
        """,
        SpecError,
        r"unknown auth type 'magic'; allowed: api_key, bearer, http_basic, oauth2",
        3,
        None,
        "client.auth.type",
    ),
    "bad-default-overridden-by-every-resource": Bad(
        BASE + "resource_defaults: {max_table_nesting: deep}\nresources: [{name: x, max_table_nesting: 1}]\n",
        SpecError,
        r"dlt rejects this: field `max_table_nesting=deep` has invalid type",
        2,
        None,
        "resource_defaults.max_table_nesting",
    ),
    "default-endpoint-as-a-path": Bad(
        BASE + "resource_defaults: {endpoint: users}\nresources: [x]\n",
        SpecError,
        r"must be a mapping \(dlt takes a path alone only in a resource\)",
        2,
        None,
        "resource_defaults.endpoint",
    ),
    "unknown-parent-in-headers": Bad(
        BASE
        + """
        resources:
          - name: kids
            endpoint:
              path: kids
              headers: {X-P: '{resources.nobody.id}'}
        """,
        SpecError,
        r"refers to resource 'nobody', which does not exist",
        6,
        "kids",
        "endpoint.headers",
    ),
    "parent-reference-without-a-field": Bad(
        BASE
        + """
        resources:
          - name: users
          - name: kids
            endpoint:
              path: 'users/{resources.users}/kids'
        """,
        SpecError,
        r"Invalid definition of `resources.users`",
        6,
        "kids",
        "endpoint.path",
    ),
    "freshness-under-a-minute": Bad(
        BASE + "resources: [{name: x, freshness: {fail_window: 30s}}]\n",
        SpecError,
        r"'30s' is under a minute, the least Dagster's freshness takes",
        2,
        "x",
        "freshness.fail_window",
    ),
    "merged-warn-window-not-shorter": Bad(
        BASE
        + "resource_defaults: {freshness: {fail_window: 1d, warn_window: 6h}}\n"
        + "resources: [{name: x, freshness: {fail_window: 2h}}]\n",
        SpecError,
        r"must be shorter than fail_window \(2h\)",
        3,
        "x",
        "freshness.warn_window",
    ),
    "two-resources-one-table": Bad(
        BASE + "resources: [{name: shops}, {name: shops_copy, table_name: shops}]\n",
        SpecError,
        r"resource 'shops_copy' would load into table 'shops', as 'shops' \(resources\[0\]\) does",
        2,
        "shops_copy",
        "name",
    ),
    "resource-name-with-dlts-separator": Bad(
        BASE + "resources: [{name: a__b}]\n",
        SpecError,
        r"'a__b' is not a name dlt keeps for a table \(it would be 'a_b'\)",
        2,
        "a__b",
        "name",
    ),
    "resource-name-with-a-trailing-underscore": Bad(
        BASE + "resources: [{name: shops_}]\n",
        SpecError,
        r"'shops_' is not a name dlt keeps for a table \(it would be 'shopsx'\)",
        2,
        "shops_",
        "name",
    ),
    "no-asset-at-all": Bad(
        BASE + "resources: [{name: x, selected: false}]\n",
        SpecError,
        r"every resource is `selected: false`: the source would have no asset",
        2,
        None,
        "resources",
    ),
    "client-credentials-without-token-url": Bad(
        """
        client:
          base_url: https://api.example.com
          auth: {type: oauth2_client_credentials, client_id: cid, client_secret: {secret: cs}}
        resources: [x]
        """,
        SpecError,
        r"auth type 'oauth2_client_credentials' needs 'access_token_url'",
        3,
        None,
        "client.auth",
    ),
    # ---- cron and durations ----
    "cron-out-of-range": Bad(
        'schedule: "61 * * * *"\n' + BASE + "resources: [x]\n",
        SpecError,
        r"'61 \* \* \* \*' is not a valid cron expression",
        1,
        None,
        "schedule",
    ),
    "cron-words": Bad(
        "schedule: every hour\n" + BASE + "resources: [x]\n", SpecError, r"not a valid cron expression", 1, None, "schedule"
    ),
    "cron-six-fields": Bad(
        'schedule: "0 0 * * * *"\n' + BASE + "resources: [x]\n", SpecError, r"not a valid cron expression", 1, None, "schedule"
    ),
    "duration-word": Bad(
        BASE
        + """
        resources:
          - name: orders
            freshness: {fail_window: soon}
        """,
        SpecError,
        r"'soon' is not a duration; write e\.g\. 30m",
        4,
        "orders",
        "freshness.fail_window",
    ),
    "duration-unit": Bad(
        BASE
        + """
        resource_defaults:
          freshness: {fail_window: 6h, warn_window: 3x}
        resources: [x]
        """,
        SpecError,
        r"'3x' is not a duration",
        3,
        None,
        "resource_defaults.freshness.warn_window",
    ),
    "freshness-without-fail-window": Bad(
        BASE
        + """
        resources:
          - name: orders
            freshness: {warn_window: 1h}
        """,
        SpecError,
        r"needs 'fail_window'",
        4,
        "orders",
        "freshness",
    ),
    "warn-window-not-shorter-than-fail-window": Bad(
        BASE
        + """
        resources:
          - name: orders
            freshness: {fail_window: 6h, warn_window: 6h}
        """,
        SpecError,
        r"must be shorter than fail_window \(6h\)",
        4,
        "orders",
        "freshness.warn_window",
    ),
    "secret-marker-misspelt": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint: {path: orders, headers: {X-Key: {secrett: api_key}}}
        """,
        SpecError,
        r"unknown key 'secrett': did you mean 'secret'\?",
        4,
        "orders",
        "endpoint.headers.X-Key.secrett",
    ),
    # ---- parent/child ----
    "stream-partition-no-candidate": Bad(
        BASE
        + """
        resources:
          - shops
          - name: orders
            endpoint: "/x/{{ stream_partition['vendor_id'] }}/orders"
        """,
        SpecError,
        r"cannot infer the parent of stream_partition\['vendor_id'\]: none of the resources match; "
        r"set endpoint\.partition_router",
        5,
        "orders",
        "endpoint.path",
    ),
    "stream-partition-several-candidates": Bad(
        BASE
        + """
        resources:
          - box
          - boxes
          - name: items
            endpoint: "/boxes/{{ stream_partition['box_id'] }}/items"
        """,
        SpecError,
        r"several \(box, boxes\) of the resources match",
        6,
        "items",
        "endpoint.path",
    ),
    "stream-partition-not-an-id": Bad(
        BASE
        + """
        resources:
          - shops
          - name: orders
            endpoint: "/shops/{{ stream_partition['shop'] }}/orders"
        """,
        SpecError,
        r"cannot infer the parent of stream_partition\['shop'\]: none",
        5,
        "orders",
        "endpoint.path",
    ),
    "stream-partition-two-fields": Bad(
        BASE
        + """
        resources:
          - shops
          - name: orders
            endpoint: "/shops/{{ stream_partition['shop_id'] }}/{{ stream_partition['other_id'] }}"
        """,
        SpecError,
        r"several stream_partition fields \(shop_id, other_id\)",
        5,
        "orders",
        "endpoint.path",
    ),
    "partition-router-missing-parent": Bad(
        BASE
        + """
        resources:
          - shops
          - name: orders
            endpoint:
              path: "/shops/{{ stream_partition['shop'] }}/orders"
              partition_router: {parent: stores}
        """,
        SpecError,
        r"parent resource 'stores' does not exist; resources: shops, orders",
        7,
        "orders",
        "endpoint.partition_router.parent",
    ),
    "partition-router-without-placeholder": Bad(
        BASE
        + """
        resources:
          - shops
          - name: orders
            endpoint:
              path: /orders
              partition_router: {parent: shops}
        """,
        SpecError,
        r"neither the path nor the params use",
        7,
        "orders",
        "endpoint.partition_router",
    ),
    "native-placeholder-missing-parent": Bad(
        BASE
        + """
        resources:
          - shops
          - name: orders
            endpoint: "/stores/{resources.stores.id}/orders"
        """,
        SpecError,
        r"refers to resource 'stores', which does not exist; resources: shops, orders",
        5,
        "orders",
        "endpoint.path",
    ),
    "parent-child-cycle": Bad(
        BASE
        + """
        resources:
          - name: shops
            endpoint: "/orders/{resources.orders.shop_id}/shop"
          - name: orders
            endpoint: "/shops/{resources.shops.id}/orders"
        """,
        SpecError,
        r"parent/child cycle: shops -> orders -> shops",
        4,
        "shops",
        "endpoint.path",
    ),
    "stream-partition-cycle-via-router": Bad(
        BASE
        + """
        resources:
          - name: shops
            endpoint:
              path: "/shops/{{ stream_partition['x'] }}"
              partition_router: {parent: shops}
        """,
        SpecError,
        r"parent/child cycle: shops -> shops",
        5,
        "shops",
        "endpoint.path",
    ),
    # ---- stop conditions are checked at load time ----
    "stop-condition-call": Bad(
        BASE
        + """
        resources:
          - name: orders
            endpoint:
              paginator:
                type: cursor
                cursor_path: next
                stop_condition: "__import__('os').system('touch x')"
        """,
        StopConditionError,
        r"must not contain '__'.*allowed: a dotted path",
        8,
        "orders",
        "endpoint.paginator.stop_condition",
    ),
    # ---- YAML itself ----
    "malformed-yaml": Bad(
        "client: {base_url: https://api.example.com\nresources: [x]\n", SpecError, r"invalid YAML: .*expected ',' or '}'", 2
    ),
    "yaml-python-tag": Bad(
        'client: !!python/object/apply:os.system ["echo pwned"]\nresources: [x]\n',
        SpecError,
        r"invalid YAML: .*python/object/apply:os\.system.*tags that construct objects are refused",
        1,
    ),
    "yaml-python-name-tag": Bad(
        "client: !!python/name:os.system\nresources: [x]\n", SpecError, r"tags that construct objects are refused", 1
    ),
    "empty-file": Bad("", SpecError, r"the file is empty"),
    "top-level-list": Bad("- a\n- b\n", SpecError, r"must be a mapping, got a list", 1),
    "bad-source-name": Bad(
        "name: Orders-API\n" + BASE + "resources: [x]\n", SpecError, r"not a snake_case identifier", 1, None, "name"
    ),
    "source-name-longer-than-dlt-takes": Bad(
        "name: " + "s" * 64 + "\n" + BASE + "resources: [x]\n",
        SpecError,
        r"is 64 characters long; a source name has 63 at most",
        1,
        None,
        "name",
    ),
    "auth-plain-string-not-a-type": Bad(
        """
        client:
          base_url: https://api.example.com
          auth: bearr
        resources: [x]
        """,
        SpecError,
        r"a plain-string auth must be one of api_key, bearer, .*put a token under auth\.token",
        3,
        None,
        "client.auth",
    ),
    "bad-secret-marker": Bad(
        """
        client:
          base_url: https://api.example.com
          auth: {type: bearer, token: {secret: key, extra: 1}}
        resources: [x]
        """,
        SpecError,
        r"a secret is written \{secret: KEY\}",
        3,
        None,
        "client.auth.token",
    ),
    # ---- what dlt refuses only when it makes the resource ----
    "column-hint-misspelt": Bad(
        BASE + "resources:\n  - name: x\n    columns: {id: {nulable: false}}\n",
        SpecError,
        r"dlt rejects this: .*nulable.*Did you mean 'nullable'\?",
        4,
        "x",
        "columns",
    ),
    "column-data-type-unknown": Bad(
        BASE + "resources:\n  - name: x\n    columns: {id: {data_type: integr}}\n",
        SpecError,
        r"dlt rejects this: .*integr.* is not one of",
        4,
        "x",
        "columns",
    ),
    "param-mapping-without-type": Bad(
        BASE + "resources:\n  - name: x\n    endpoint: {path: x, params: {q: {foo: bar}}}\n",
        SpecError,
        r"a param that is a mapping has the type 'resolve' or 'incremental', not None",
        4,
        "x",
        "endpoint.params.q",
    ),
    "stream-partition-misspelt": Bad(
        BASE + "resources:\n  - name: x\n  - name: y\n    endpoint: {path: \"x/{{ stream_partiton['id'] }}/y\"}\n",
        SpecError,
        r"unknown placeholder '\{\{ stream_partiton\[\.\.\.\] \}\}'\. Did you mean 'stream_partition'\?",
        5,
        "y",
        "endpoint.path",
    ),
    "unknown-expression-in-second-resource": Bad(
        BASE + "resources:\n  - name: orders\n  - name: items\n    endpoint: {path: items, params: {q: '{foo}'}}\n",
        SpecError,
        r"dlt rejects this: Expression `foo` defined in `params` is not valid",
        5,
        "items",
        "endpoint.params",
    ),
    "response-action-key-misspelt": Bad(
        BASE
        + "resources:\n  - name: x\n    endpoint:\n      path: x\n      response_actions: [{status_code: 404, actoin: ignore}]\n",
        SpecError,
        r"dlt rejects this: received unexpected fields `\{'actoin'\}`; did you mean 'action'\?",
        6,
        "x",
        "endpoint.response_actions.0",
    ),
    # ---- names and texts that the destination or Dagster would take otherwise ----
    "source-name-dlt-rewrites": Bad(
        "name: my__api\n" + BASE + "resources: [x]\n",
        SpecError,
        r"'my__api' is not a name dlt keeps: its dataset would be 'my_api'",
        1,
        None,
        "name",
    ),
    "source-name-trailing-underscore": Bad(
        "name: api_\n" + BASE + "resources: [x]\n", SpecError, r"its dataset would be 'apix'", 1, None, "name"
    ),
    "source-description-not-text": Bad(
        "description: 5\n" + BASE + "resources: [x]\n", SpecError, "must be text", 1, None, "description"
    ),
    "resource-description-not-text": Bad(
        BASE + "resources:\n  - name: x\n    description: 5\n", SpecError, "must be text", 4, "x", "description"
    ),
    "primary-key-from-a-setting": Bad(
        BASE + "resources:\n  - name: x\n    primary_key: {config: pk}\n",
        SpecError,
        r"must be written out in the spec, not a \{secret: \.\.\.\} or \{config: \.\.\.\}",
        4,
        "x",
        "primary_key",
    ),
    "table-name-from-a-secret": Bad(
        BASE + "resources:\n  - name: x\n    table_name: {secret: tn}\n",
        SpecError,
        "must be written out in the spec",
        4,
        "x",
        "table_name",
    ),
}


@pytest.mark.parametrize("case", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_spec_is_refused_with_a_message_that_says_where(tmp_path, case):
    path = write_spec(tmp_path, case.yaml)
    with pytest.raises(case.exc, match=case.regex) as info:
        load_spec_file(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert FILE_NAME in message
    if case.line is not None:
        assert message.startswith(f"{path}:{case.line} ") or message.startswith(f"{path}:{case.line}:"), message
        assert info.value.line == case.line
    if case.resource is not None:
        assert f"resource '{case.resource}'" in message
        assert info.value.resource == case.resource
    else:
        assert "resource '" not in message
    if case.key is not None:
        assert f"key '{case.key}'" in message
        assert info.value.key == case.key
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, SpecError)


def test_yaml_python_tag_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write_spec(tmp_path, f'client: !!python/object/apply:os.system ["touch {marker}"]\nresources: [x]\n')
    with pytest.raises(SpecError):
        load_spec_file(path)
    assert not marker.exists()


# ---- secrets never appear in an error message ----

TOKEN = "sk_live_9f8e7d6c5b4a3f2e1d"
LEAKY_SPECS = {
    "unknown-auth-key": f"""
        client:
          base_url: https://api.example.com
          auth: {{type: api_key, name: X-Key, api_key: {TOKEN}, locaton: query}}
        resources: [x]
        """,
    "bad-auth-location": f"""
        client:
          base_url: https://api.example.com
          auth: {{type: api_key, name: X-Key, api_key: {TOKEN}, location: body}}
        resources: [x]
        """,
    "unknown-auth-type-beside-key": f"""
        client:
          base_url: https://api.example.com
          auth: {{type: magic, api_key: {TOKEN}}}
        resources: [x]
        """,
    "token-written-as-auth": f"""
        client:
          base_url: https://api.example.com
          auth: {TOKEN}
        resources: [x]
        """,
    "duplicate-api-key": f"""
        client:
          base_url: https://api.example.com
          auth:
            type: api_key
            api_key: {TOKEN}
            api_key: {TOKEN}
        resources: [x]
        """,
    "malformed-yaml-after-token": f"""
        client:
          base_url: https://api.example.com
          auth: {{type: bearer, token: {TOKEN}
        resources: [x]
        """,
    "broken-endpoint-with-header-token": f"""
        client: {{base_url: https://api.example.com}}
        resources:
          - name: orders
            endpoint:
              headers: {{Authorization: "Bearer {TOKEN}"}}
              paginator: {{type: offset, limit: many}}
        """,
    "bad-secret-marker-with-token": f"""
        client:
          base_url: https://api.example.com
          auth: {{type: bearer, token: {{secret: {TOKEN}, value: {TOKEN}}}}}
        resources: [x]
        """,
}


@pytest.mark.parametrize("text", LEAKY_SPECS.values(), ids=LEAKY_SPECS.keys())
def test_secret_values_never_appear_in_errors(tmp_path, text):
    with pytest.raises(SpecError) as info:
        load(tmp_path, text)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value.args)
    assert FILE_NAME in str(info.value)


# ---- valid specs: the normalised config ----

VALID = """
    client:
      base_url: https://api.example.com
      auth: {type: bearer, api_key: {secret: api_token}}
    resource_defaults:
      primary_key: id
      write_disposition: merge
      freshness: {fail_window: 1d, warn_window: 6h}
      endpoint:
        params: {per_page: 50, sort: asc}
        headers: {X-Org: {secret: org_id}}
        paginator: {type: offset, limit: 10, total_path: total}
        auth: {type: api_key, name: X-Key, api_key: {secret: default_key}}
        error_handler: {retry_on_status_codes: [429], max_retries: 2}
    resources:
      - companies
      - name: categories
        freshness: {fail_window: 12h}
        endpoint:
          params: {sort: desc}
          paginator: {type: page_number, limit: 5}
          auth: {type: bearer, token: {secret: category_token}}
      - name: notes
        endpoint: "/companies/{{ stream_partition['company_id'] }}/notes"
      - name: members
        endpoint:
          path: /categories/{{ stream_partition.category_id }}/members
      - name: comments
        endpoint:
          path: /comments
          params: {note: "{{ stream_partition['id'] }}"}
          partition_router: {parent: notes, parent_key: id, partition_field: id}
      - name: attachments
        endpoint: /notes/{resources.notes.id}/attachments
"""


@pytest.fixture()
def valid_spec(tmp_path):
    return load(tmp_path, VALID)


def test_valid_spec_top_level(valid_spec):
    assert valid_spec.name == "orders_api"  # the file stem
    assert valid_spec.file.endswith(FILE_NAME)
    assert [r.name for r in valid_spec.resources] == ["companies", "categories", "notes", "members", "comments", "attachments"]
    assert valid_spec.client["auth"] == {"type": "bearer", "api_key": SecretRef("api_token")}
    assert valid_spec.secret_keys == ["api_token", "org_id", "default_key", "category_token"]


def test_string_shorthand_resource_gets_defaults_deep_merged(valid_spec):
    companies = valid_spec.resource("companies").config
    assert companies == {
        "name": "companies",
        "primary_key": "id",
        "write_disposition": "merge",
        "freshness": {"fail_window": "1d", "warn_window": "6h"},
        "endpoint": {
            "path": "companies",
            "params": {"per_page": 50, "sort": "asc"},
            "headers": {"X-Org": SecretRef("org_id")},
            "paginator": {"type": "offset", "limit": 10, "total_path": "total"},
            "auth": {"type": "api_key", "name": "X-Key", "api_key": SecretRef("default_key")},
            "error_handler": {"retry_on_status_codes": [429], "max_retries": 2},
        },
    }
    assert valid_spec.resource("companies").freshness.fail_window.total_seconds() == 86400
    assert valid_spec.resource("companies").freshness.warn_window.total_seconds() == 6 * 3600


def test_paginator_and_auth_are_replaced_wholesale_and_params_merged(valid_spec):
    endpoint = valid_spec.resource("categories").endpoint
    assert endpoint["paginator"] == {"type": "page_number", "limit": 5}  # no total_path from the defaults
    assert endpoint["auth"] == {"type": "bearer", "token": SecretRef("category_token")}  # no name/api_key
    assert endpoint["params"] == {"per_page": 50, "sort": "desc"}
    assert endpoint["error_handler"] == {"retry_on_status_codes": [429], "max_retries": 2}
    freshness = valid_spec.resource("categories").freshness
    assert freshness.fail_window.total_seconds() == 12 * 3600 and freshness.warn_window.total_seconds() == 6 * 3600


@pytest.mark.parametrize(
    ("resource", "parent", "parent_key", "path", "params"),
    [
        ("notes", "companies", "id", "/companies/{resources.companies.id}/notes", {"per_page": 50, "sort": "asc"}),
        ("members", "categories", "id", "/categories/{resources.categories.id}/members", {"per_page": 50, "sort": "asc"}),
        ("comments", "notes", "id", "/comments", {"per_page": 50, "sort": "asc", "note": "{resources.notes.id}"}),
        ("attachments", "notes", "id", "/notes/{resources.notes.id}/attachments", {"per_page": 50, "sort": "asc"}),
    ],
)
def test_parent_child_links_are_rewritten_to_dlt_placeholders(valid_spec, resource, parent, parent_key, path, params):
    spec = valid_spec.resource(resource)
    assert spec.parent is not None and (spec.parent.parent, spec.parent.parent_key) == (parent, parent_key)
    assert spec.endpoint["path"] == path
    assert spec.endpoint["params"] == params
    assert "partition_router" not in spec.endpoint
    assert "stream_partition" not in str(spec.config)
    if "{resources." in path + str(params) and resource != "attachments":
        assert spec.config["include_from_parent"] == [parent_key]
    assert spec.parent.child_column == f"_{parent}_{parent_key}"


def test_native_placeholder_needs_no_include_from_parent(valid_spec):
    assert "include_from_parent" not in valid_spec.resource("attachments").config
    assert [r.name for r in valid_spec.children_of("notes")] == ["comments", "attachments"]
    assert valid_spec.resource("companies").parent is None


@pytest.mark.parametrize(
    ("parent_name", "field"),
    [("shop", "shop_id"), ("shops", "shop_id"), ("boxes", "box_id"), ("categories", "category_id")],
)
def test_parent_inference_from_stem(tmp_path, parent_name, field):
    spec = load(
        tmp_path,
        BASE
        + f"""
        resources:
          - {parent_name}
          - name: child
            endpoint: "/p/{{{{ stream_partition['{field}'] }}}}/child"
        """,
    )
    child = spec.resource("child")
    assert (child.parent.parent, child.parent.parent_key) == (parent_name, "id")
    assert child.endpoint["path"] == f"/p/{{resources.{parent_name}.id}}/child"
    assert child.config["include_from_parent"] == ["id"]


def test_loading_does_not_mutate_the_parsed_document(tmp_path):
    doc = parse_yaml(_yaml(VALID), str(tmp_path / FILE_NAME))
    before = copy.deepcopy(doc.data)
    spec = build_source_spec(doc, default_name="orders_api")
    assert doc.data == before
    # each resource owns its config: changing one changes neither the defaults nor a sibling
    spec.resource("companies").endpoint["params"]["per_page"] = 1
    assert spec.resource("notes").endpoint["params"]["per_page"] == 50
    assert doc.data["resource_defaults"]["endpoint"]["params"]["per_page"] == 50


def test_secret_refs_everywhere_and_literal_values_kept(tmp_path):
    spec = load(
        tmp_path,
        """
        name: shop
        client:
          base_url: {secret: base_url}
          headers: {X-Org: {secret: org}}
          auth: {type: oauth2, client_id: {secret: cid}, client_secret: {secret: csec}, token_url: https://id.example.com/t}
        resources:
          - name: items
            endpoint:
              params: {tags: [{secret: tag}, plain]}
        """,
    )
    assert spec.name == "shop"
    assert spec.client["base_url"] == SecretRef("base_url")
    assert spec.client["auth"]["client_secret"] == SecretRef("csec")
    assert spec.resource("items").endpoint["params"]["tags"] == [SecretRef("tag"), "plain"]
    assert spec.secret_keys == ["base_url", "org", "cid", "csec", "tag"]
    assert repr(SecretRef("csec")) == "{secret: csec}"


# ---- the bundled specs ----

BUNDLED_PARENTS = {
    ("help_desk", "conversation_threads"): "conversations",
    ("help_desk", "inbox_custom_fields"): "inboxes",
    ("help_desk", "inbox_folders"): "inboxes",
    ("help_desk", "team_members"): "teams",
}


def test_bundled_specs_load_with_expected_resources_and_parents():
    specs = load_spec_dirs([BUNDLED_SOURCES_DIR])
    assert sorted(s.name for s in specs) == ["chat_analytics", "client_portal", "contact_book", "help_desk", "sales_crm"]
    assert sum(len(s.resources) for s in specs) == 32
    parents = {(s.name, r.name): r.parent.parent for s in specs for r in s.resources if r.parent}
    assert parents == BUNDLED_PARENTS
    help_desk = next(s for s in specs if s.name == "help_desk")
    assert help_desk.resource("team_members").endpoint["path"] == "/v2/teams/{resources.teams.id}/members"
    assert help_desk.resource("team_members").primary_key == ["id", "_teams_id"]
    assert all(s.schedule for s in specs)
    assert all(r.freshness is not None for s in specs for r in s.resources)


def test_spec_dirs_from_env_default_and_multiple_dirs(tmp_path):
    assert spec_dirs_from_env({}) == [BUNDLED_SOURCES_DIR]
    first, second = tmp_path / "a", tmp_path / "b"
    assert spec_dirs_from_env({"REST_ASSETS_SOURCES_DIR": f"{first}{os.pathsep}{second}"}) == [first, second]


def test_sources_dir_env_with_two_folders_loads_both(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    write_spec(first, BASE + "resources: [orders]\n", "shop.yaml")
    write_spec(second, BASE + "resources: [users]\n", "crm.yml")
    monkeypatch.setenv("REST_ASSETS_SOURCES_DIR", f"{first}{os.pathsep}{second}")
    specs = load_spec_dirs(spec_dirs_from_env())
    assert [(s.name, [r.name for r in s.resources]) for s in specs] == [("shop", ["orders"]), ("crm", ["users"])]


def test_duplicate_source_names_across_files_are_refused(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    write_spec(first, BASE + "resources: [orders]\n", "shop.yaml")
    write_spec(second, "name: shop\n" + BASE + "resources: [users]\n", "other.yaml")
    with pytest.raises(SpecError, match=r"source name 'shop' is also used by .*shop\.yaml; names must be unique") as info:
        load_spec_dirs([first, second])
    assert str(second / "other.yaml") in str(info.value)
    assert info.value.key == "name"


def test_every_invalid_spec_of_a_folder_is_named_at_once(tmp_path):
    write_spec(tmp_path, BASE + "resources: [orders]\n", "a_good.yaml")
    write_spec(tmp_path, BASE + "resources: [{name: 1}]\n", "b_bad.yaml")
    write_spec(tmp_path, "client: {base_url: nope}\nresources: [x]\n", "c_bad.yaml")
    with pytest.raises(SpecError) as info:
        load_spec_dirs([tmp_path])
    message = str(info.value)
    assert message.startswith(str(tmp_path / "b_bad.yaml")) and info.value.file == str(tmp_path / "b_bad.yaml")
    assert "1 more invalid spec(s):" in message and f"  {tmp_path / 'c_bad.yaml'}" in message
    assert "key 'client.base_url'" in message and "a_good.yaml" not in message


def test_hidden_files_are_not_specs_and_a_folder_named_twice_is_read_once(tmp_path):
    write_spec(tmp_path, BASE + "resources: [orders]\n", "shop.yaml")
    (tmp_path / ".#shop.yaml").symlink_to(tmp_path / "gone")  # an editor's lock file: a dangling link
    write_spec(tmp_path, "not: [valid", ".shop.yaml.swp.yaml")
    specs = load_spec_dirs([tmp_path, tmp_path / "."])
    assert [s.name for s in specs] == ["shop"]


def test_missing_spec_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SpecError, match=r"spec folder does not exist \(set REST_ASSETS_SOURCES_DIR"):
        load_spec_dirs([tmp_path / "nope"])


def test_resource_defaults_merge_as_dlt_merges_them(tmp_path):
    """Resource keys replace the defaults' wholesale (dlt's _merge_resource_endpoints); params/json and columns merge."""
    spec = load(
        tmp_path,
        BASE
        + """
        resource_defaults:
          write_disposition: {disposition: merge, strategy: scd2}
          schema_contract: {tables: evolve, columns: freeze}
          columns: {id: {data_type: bigint}, name: {data_type: text}}
          endpoint:
            headers: {X-A: a, X-B: b}
            params: {per_page: 50}
            json: {filter: {x: 1}}
        resources:
          - name: orders
            write_disposition: {disposition: merge, strategy: upsert}
            schema_contract: {columns: evolve}
            columns: [{name: id, nullable: false}]
            endpoint:
              headers: {X-A: z}
              params: {sort: asc}
              json: {page: 1}
        """,
    )
    orders = spec.resource("orders").config
    assert orders["write_disposition"] == {"disposition": "merge", "strategy": "upsert"}
    assert orders["schema_contract"] == {"columns": "evolve"}
    assert orders["endpoint"]["headers"] == {"X-A": "z"}
    assert orders["endpoint"]["params"] == {"per_page": 50, "sort": "asc"}
    assert orders["endpoint"]["json"] == {"filter": {"x": 1}, "page": 1}
    assert orders["columns"]["id"] == {"name": "id", "data_type": "bigint", "nullable": False}
    assert orders["columns"]["name"] == {"name": "name", "data_type": "text"}
    # the oracle: dlt's own merge of the same two mappings
    import yaml
    from dlt.sources.rest_api.config_setup import _merge_resource_endpoints

    document = yaml.safe_load((tmp_path / FILE_NAME).read_text())
    expected = _merge_resource_endpoints(document["resource_defaults"], document["resources"][0])
    expected["endpoint"].setdefault("path", "orders")  # dlt too requests the resource name when no path is given
    assert orders == expected


def test_a_resource_may_set_one_freshness_window_and_take_the_other_from_the_defaults(tmp_path):
    defaults = "resource_defaults: {freshness: {fail_window: 2h, warn_window: 30m}}\n"
    spec = load(
        tmp_path,
        BASE + defaults + "resources: [{name: a, freshness: {warn_window: 1h}}, {name: b, freshness: {fail_window: 6h}}]\n",
    )
    a, b = spec.resource("a").freshness, spec.resource("b").freshness
    assert (a.fail_window.total_seconds(), a.warn_window.total_seconds()) == (7200, 3600)
    assert (b.fail_window.total_seconds(), b.warn_window.total_seconds()) == (6 * 3600, 1800)


def test_a_default_endpoint_path_never_applies_as_in_dlt(tmp_path):
    """dlt gives a resource without a path its name before it merges the defaults (`_make_endpoint_resource`)."""
    spec = load(tmp_path, BASE + "resource_defaults: {endpoint: {path: users, params: {a: 1}}}\nresources: [{name: auth}]\n")
    assert spec.resource("auth").config["endpoint"] == {"path": "auth", "params": {"a": 1}}


def test_a_spec_built_in_python_keeps_its_processing_step_callables():
    from rest_assets.dialect import spec_from_dict

    def double(record):
        return {**record, "n": record["n"] * 2}

    spec = spec_from_dict(
        {
            "client": {"base_url": "https://api.example.com"},
            "resources": [{"name": "orders", "processing_steps": [{"map": double}]}],
        },
        "shop",
    )
    assert spec.resource("orders").config["processing_steps"] == [{"map": double}]


def test_declarative_steps_become_callables_applied_in_order(tmp_path):
    spec = load(
        tmp_path,
        BASE
        + """
        resources:
          - name: orders
            processing_steps:
              - filter: "status in ['open', 'paid']"
              - map: {rename: {amount: total}, keep: [id, total]}
        """,
    )
    steps = spec.resource("orders").config["processing_steps"]
    records = [{"id": 1, "status": "open", "amount": 3, "x": 0}, {"id": 2, "status": "void", "amount": 4}]
    kept = [steps[1]["map"](dict(r)) for r in records if steps[0]["filter"](r)]
    assert kept == [{"id": 1, "total": 3}]


CRON_EXAMPLES = [
    "0 * * * *",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    "@midnight",
    "*/15 9-17 * * mon-fri",
    "0 0 L * *",
    "0 0 * * 5#3",
    "0 0 ? * *",
    "0 0 1 jan,jul *",
    "0 0 30 2 *",
    "0 0 31 2 *",
    "0 0 29 2 *",
    "61 * * * *",
    "0 0 * * * *",
    "0 0 0 * *",
    "* * * * 8",
    "@reboot",
    "every hour",
    "",
    "0 0 * * 7",
    "0 0 LW * *",
    "0 12 * * sun#1",
    "1-5/2 * * * *",
    "0 0 1,15 * 1",
]


@pytest.mark.parametrize("expression", CRON_EXAMPLES)
def test_the_spec_takes_a_cron_expression_exactly_when_dagster_does(expression):
    from dagster._utils.schedules import is_valid_cron_string

    from rest_assets.dialect.cron import is_valid_cron

    assert is_valid_cron(expression) is is_valid_cron_string(expression)


@pytest.mark.parametrize("name", ["meta", "config", "input"])
def test_a_source_name_dagster_reserves_is_a_spec_error_naming_the_file(tmp_path, name):
    from rest_assets.orchestration.code_location import build_definitions

    path = write_spec(tmp_path, BASE + "resources: [x]\n", name=f"{name}.yaml")
    with pytest.raises(SpecError, match=f"source name '{name}' cannot name a Dagster op") as info:
        build_definitions([tmp_path])
    assert str(info.value).startswith(str(path)) and info.value.key == "name"


@pytest.mark.parametrize(
    "endpoint",
    ["endpoint: &e {path: x, json: {a: *e}}", "endpoint: {path: x, json: " + "[" * 1500 + "]" * 1500 + "}"],
    ids=["alias-holding-itself", "1500-nested-lists"],
)
def test_a_spec_nesting_without_end_is_a_spec_error_naming_the_file(tmp_path, endpoint):
    path = write_spec(tmp_path, BASE + f"resources:\n  - name: x\n    {endpoint}\n")
    with pytest.raises(SpecError, match="nests too deeply") as info:
        load_spec_file(path)
    assert str(info.value).startswith(str(path))
