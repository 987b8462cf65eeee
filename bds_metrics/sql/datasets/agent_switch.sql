-- agent_switch (bds decision, docs/DECISIONS.md): the switch of each agent id, from
-- the agent's RESOURCE_ row with the largest RESOURCE_KEY. Gives multimedia login
-- sessions (which carry no resource) their switch, and so their location. An empty
-- SWITCH_NAME is null (SPEC §4).
-- params: tenant_key
SELECT DISTINCT ON (r.resource_cfg_dbid)
       r.resource_cfg_dbid::bigint AS agent_id,
       nullif(r.switch_name, '')::text AS switch_name
FROM resource_ r
WHERE r.resource_type_code = 'AGENT'
  AND r.resource_cfg_dbid IS NOT NULL
  AND ($1::int IS NULL OR r.tenant_key = $1)
ORDER BY r.resource_cfg_dbid, r.resource_key DESC
