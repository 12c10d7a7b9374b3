"""Talkdesk: bulk imports (HAL-paged list) and Explore report jobs."""
