"""SQL migrations: numbered files per engine, applied in order by ``kaoping migrate``."""
