-- folder (SPEC §4): the tenant's configuration folders; FOLDERID is the parent.
-- params: tenant_dbid
SELECT f.id::bigint AS folder_id,
       f.name::text AS name,
       f.folderid::bigint AS parent_id
FROM gidb_gc_folder f
WHERE ($1::int IS NULL OR f.tenantid = $1)
ORDER BY f.id
