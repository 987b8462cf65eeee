-- agent_resource (SPEC §4): the tenant's Person objects; FOLDERID is their folder.
-- params: tenant_dbid
SELECT a.id::bigint AS agent_id,
       a.folderid::bigint AS folder_id,
       a.username::text AS username,
       a.employeeid::text AS employee_id
FROM gidb_gc_agent a
WHERE ($1::int IS NULL OR a.tenantid = $1)
ORDER BY a.id
