-- The producer reads pg_stat_activity.xact_start of other sessions to find the oldest transaction
-- still in flight; without pg_read_all_stats it sees NULL there for other roles' sessions.
-- Idempotent, and harmless where student is a superuser (the docker image creates it as one).
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'student')
     AND NOT pg_has_role('student', 'pg_read_all_stats', 'MEMBER') THEN
    GRANT pg_read_all_stats TO student;
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'could not GRANT pg_read_all_stats TO student (run as a superuser): the producer will not see other sessions'' transactions';
END
$$;
