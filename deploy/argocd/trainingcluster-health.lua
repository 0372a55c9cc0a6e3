-- Argo CD health of a berth.dev/TrainingCluster, from the status the berth operator writes
-- (docs/operator.md). Install: argocd-cm key resource.customizations.health.berth.dev_TrainingCluster.
-- Lua 5.1 (Argo CD runs gopher-lua); tested by tests/test_operator_chart.py with lupa's Lua 5.1.
local hs = {}
local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the berth operator to reconcile"
  return hs
end
local generation = (obj.metadata or {}).generation
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the berth operator to observe generation " .. generation
  return hs
end
local conditions = {}
for _, condition in ipairs(status.conditions or {}) do
  conditions[condition.type] = condition
end
local function on(kind)
  return conditions[kind] ~= nil and conditions[kind].status == "True"
end
local function says(kind)
  local c = conditions[kind]
  local text = c.reason or kind
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end
if on("Failed") then
  hs.status = "Degraded"
  hs.message = says("Failed")
  return hs
end
-- DriftCorrected: a hand edit was set back in this pass; the cluster is as specified again.
if on("Degraded") and conditions["Degraded"].reason ~= "DriftCorrected" then
  hs.status = "Degraded"
  hs.message = says("Degraded")
  return hs
end
if on("Succeeded") then
  hs.status = "Healthy"
  hs.message = says("Succeeded")
  return hs
end
if on("Ready") and not on("Progressing") then
  hs.status = "Healthy"
  hs.message = says("Ready")
  return hs
end
hs.status = "Progressing"
if on("Progressing") then
  hs.message = says("Progressing")
elseif conditions["Ready"] ~= nil then
  hs.message = says("Ready")
else
  hs.message = "Waiting for the berth operator"
end
return hs
