--[[
  Whether `value` is one of the items of `list`, a comma-separated string (how the scripts
  receive sets of statuses and key suffixes).
]]
local function member(list, value)
  for item in string.gmatch(list, '([^,]+)') do
    if item == value then return true end
  end
  return false
end
