-- agent_resource (SPEC §4): the tenant's Person objects; FOLDERID is their folder.
-- Ordered by ID, then every column (text in code-point order, nulls last): of the rows
-- sharing an ID the extract keeps the first and counts the others as duplicate_key.
-- params: tenant_dbid
SELECT a.id::bigint AS agent_id,
       a.folderid::bigint AS folder_id,
       a.username::text AS username,
       a.employeeid::text AS employee_id
FROM gidb_gc_agent a
WHERE ($1::int IS NULL OR a.tenantid = $1)
ORDER BY 1, 2, a.username::text COLLATE "C", a.employeeid::text COLLATE "C"
