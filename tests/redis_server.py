"""Re-export: tests start their own redis-server with the lab's helper."""

from receiver.lab.redis_server import RedisServer, free_port, running_redis

__all__ = ["RedisServer", "free_port", "running_redis"]
