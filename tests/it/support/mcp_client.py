"""Drives `omk mcp` with the official Python MCP SDK, for omk's tests.

Usage: python mcp_client.py OMK REPO CALLS.json
CALLS is a list of {"tool", "args", "until_not": optional status to poll
past}. A string "$GOAL" in args is the goal_id the last goal_run returned.
Prints {"tools": [{name, description, schema}], "calls": [{tool, is_error,
text, progress}]} as JSON.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def fill(value, goal):
    if isinstance(value, str):
        return value.replace("$GOAL", goal or "")
    if isinstance(value, list):
        return [fill(v, goal) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, goal) for k, v in value.items()}
    return value


async def main():
    omk, repo, calls_file = sys.argv[1:4]
    with open(calls_file) as f:
        calls = json.load(f)
    # The SDK gives a server only a few variables by default; omk's state
    # home (OMK_HOME) must reach it.
    server = StdioServerParameters(command=omk, args=["mcp", "-C", repo], env=dict(os.environ))
    out = {"tools": [], "calls": []}
    goal = None
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            out["tools"] = [
                {"name": t.name, "description": t.description, "schema": t.inputSchema}
                for t in listed.tools
            ]
            for call in calls:
                args = fill(call.get("args", {}), goal)
                progress = []

                async def on_progress(done, total, message):
                    progress.append({"progress": done, "message": message})

                for _ in range(600):
                    result = await session.call_tool(
                        call["tool"], args, progress_callback=on_progress
                    )
                    text = "\n".join(
                        c.text for c in result.content if getattr(c, "type", "") == "text"
                    )
                    until = call.get("until_not")
                    if until is None or result.isError:
                        break
                    if json.loads(text).get("status") != until:
                        break
                    await asyncio.sleep(0.1)
                if call["tool"] == "goal_run" and not result.isError:
                    try:
                        goal = json.loads(text).get("goal_id") or goal
                    except ValueError:
                        pass
                out["calls"].append(
                    {
                        "tool": call["tool"],
                        "is_error": bool(result.isError),
                        "text": text,
                        "progress": progress,
                    }
                )
    print(json.dumps(out))


asyncio.run(main())
