"""What the streams area sends to Redis: its read commands and its one read-only script."""

from __future__ import annotations

READ_COMMANDS = frozenset(
    [
        *("XLEN", "XRANGE", "XREVRANGE", "XPENDING", "XINFO.STREAM", "XINFO.GROUPS", "XINFO.CONSUMERS"),
        *("TYPE", "PTTL"),  # peek's type check; consumers' worker registry keys
    ]
)

# Counts, inside Redis, the entries after each group's last-delivered id (at most ARGV[1]), so that lag is
# exact where Redis does not report it (6.2; 7.x after deletions) without sending entry bodies over the wire.
# It only reads; the connection guard lets exactly this script through.
COUNT_SCRIPT = """
local counts = {}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, delivered
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then delivered = group[i + 1] end
  end
  local after = redis.call('XRANGE', KEYS[1], '(' .. delivered, '+', 'COUNT', ARGV[1])
  table.insert(counts, name)
  table.insert(counts, #after)
end
return counts
"""
