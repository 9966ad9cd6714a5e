"""MCP conformance test of `vq mcp` with the official Python MCP SDK over stdio:
initialize, list the tools, call each tool, and compare with SQL results the Rust test
computed (argv: vq binary, database URL, token, truth JSON file)."""
import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

VQ, URL, TOKEN, TRUTH = sys.argv[1:5]
MCP_HTTP = sys.argv[5] if len(sys.argv) > 5 else None
truth = json.load(open(TRUTH))
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1
    print("ok:", what.split(":")[0], flush=True)


def payload(res):
    """The tool's JSON answer and whether it is a tool-level error."""
    is_error = bool(getattr(res, "isError", None) or getattr(res, "is_error", None))
    sc = getattr(res, "structuredContent", None) or getattr(res, "structured_content", None)
    if sc is None:
        sc = json.loads(res.content[0].text)
    return sc, is_error


async def main():
    params = StdioServerParameters(command=VQ, args=["mcp", "--database-url", URL],
                                   env={"VQ_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            init = await s.initialize()
            info = getattr(init, "serverInfo", None) or getattr(init, "server_info")
            check(info.name == "vq", f"initialize: server {info.name}")

            tools = (await s.list_tools()).tools
            names = sorted(t.name for t in tools)
            want = sorted(["list_collections", "quantization_stats", "recommend_quantization",
                           "apply_quantization", "search", "quality_report"])
            check(names == want, f"list_tools: {names}")
            schema = {t.name: (getattr(t, "inputSchema", None) or getattr(t, "input_schema")) for t in tools}
            check(all(sc.get("type") == "object" for sc in schema.values()), "tool schemas are objects")
            check(set(schema["search"].get("required", [])) == {"collection", "vector"},
                  f"search schema requires collection and vector: {schema['search']}")

            v, err = payload(await s.call_tool("list_collections", {}))
            check(not err and [c["indexname"] for c in v["collections"]] == ["docs_emb_idx", "items_embedding_idx"],
                  f"list_collections: {v}")

            v, err = payload(await s.call_tool("quantization_stats", {"collection": "items_embedding_idx"}))
            check(not err and v == truth["stats0"], f"quantization_stats equals SQL: {v}")

            v, err = payload(await s.call_tool("quantization_stats", {"collection": "nope"}))
            check(err and v["error"]["code"] == "not_found", f"unknown collection is a tool error: {v}")

            v, err = payload(await s.call_tool("recommend_quantization",
                                               {"collection": "items.embedding", "quality_threshold": 0.9}))
            check(not err and v["candidates"] == truth["optimize"], f"recommend_quantization equals SQL: {v}")
            chosen = [c for c in truth["optimize"] if c["chosen"]]
            check(isinstance(v["explanation"], str) and
                  (chosen[0]["method"] in v["explanation"] if chosen else "No candidate" in v["explanation"]),
                  f"recommendation explained: {v['explanation']}")
            check(v["applied"] is False, "recommend does not apply")

            v, err = payload(await s.call_tool("search", {"collection": "items.embedding", "vector": truth["vector"],
                                                          "k": 5, "ef_search": 64}))
            check(not err and [r["id"] for r in v["results"]] == truth["search_ids"], f"search equals SQL: {v}")
            v, err = payload(await s.call_tool("search", {"collection": "items.embedding", "vector": [1, 2]}))
            check(err and v["error"]["status"] == 400, f"bad vector is a tool error: {v}")

            v, err = payload(await s.call_tool("quality_report", {"collection": "items_embedding_idx",
                                                                  "sample_queries": 20, "recall_threshold": 1.01}))
            check(not err and v["recall_below_threshold"] is True and v["summary"].startswith("ALERT")
                  and v["stats"]["recall_at_10"] == truth["recall20"], f"quality_report flags low recall: {v}")
            v, err = payload(await s.call_tool("quality_report", {"collection": "items_embedding_idx",
                                                                  "sample_queries": 20}))
            check(not err and v["threshold"] == 0.95 and v["threshold_source"] == "default"
                  and v["recall_below_threshold"] == (truth["recall20"] < 0.95), f"quality_report default threshold: {v}")

            v, err = payload(await s.call_tool("apply_quantization", {"collection": "items_embedding_idx",
                                                                      "quantizer": "sq4"}))
            check(err and v["error"]["code"] == "unauthorized", f"apply without token refused: {v}")
            v, err = payload(await s.call_tool("apply_quantization", {"collection": "items_embedding_idx",
                                                                      "quantizer": "sq4", "token": TOKEN}))
            check(not err and v["quantize"]["method"] == "sq4", f"apply_quantization sq4: {v}")
    if MCP_HTTP:
        from mcp.client.streamable_http import streamable_http_client
        async with streamable_http_client(MCP_HTTP) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                init = await s.initialize()
                info = getattr(init, "serverInfo", None) or getattr(init, "server_info")
                check(info.name == "vq", "HTTP initialize")
                names = sorted(t.name for t in (await s.list_tools()).tools)
                check(len(names) == 6, f"HTTP list_tools: {names}")
                v, err = payload(await s.call_tool("list_collections", {}))
                check(not err and len(v["collections"]) == 2, f"HTTP list_collections: {v}")
                v, err = payload(await s.call_tool("search", {"collection": "items_embedding_idx",
                                                              "vector": truth["vector"], "k": 5, "ef_search": 64}))
                check(not err and v["results"][0]["id"] == truth["search_ids"][0], f"HTTP search: {v}")
                v, err = payload(await s.call_tool("apply_quantization", {"collection": "items_embedding_idx",
                                                                          "quantizer": "sq8"}))
                check(err and v["error"]["code"] == "unauthorized", f"HTTP apply without token refused: {v}")
    print(f"{checks} MCP checks passed", flush=True)


asyncio.run(main())
