"""The ``weather`` demo service: current conditions, forecasts and air quality for 20 seeded cities.

Read-only. The numbers are generated once, from a fixed seed per city, around a realistic
early-June climate, and stored; "now" is the frozen demo clock (2025-06-02 09:00 UTC).

Quirks a model has to get right:

- **units is an enum**, ``metric`` (°C, km/h, mm) or ``imperial`` (°F, mph, in), default
  metric; not "celsius" or "F". Every result names its units.
- **days is 1-7**: a 10-day forecast is refused, not truncated.
- **Shared city names** resolve to the most populous match ("Paris" is Paris, FR; "Portland"
  is Portland, Oregon) unless qualified with a country or region code: "Paris, US",
  "Portland, ME". The result's ``location`` says which city was used.
- **get_air_quality has no units parameter**: AQI is the US EPA 0-500 index, pollutants µg/m³.
"""

from __future__ import annotations

import random
import sqlite3
import unicodedata
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

from tooltune.demo.db import DEMO_NOW, Database, iso, open_database
from tooltune.demo.tooling import READ_ONLY, ToolError, register, tool

Units = Literal["metric", "imperial"]
Condition = Literal["clear", "partly_cloudy", "cloudy", "fog", "drizzle", "rain", "thunderstorm"]

INSTRUCTIONS = (
    "Weather for 20 cities. Qualify shared names with a country or region code ('Paris, US', 'Portland, ME'). "
    "units is 'metric' or 'imperial'. Forecasts cover 1-7 days starting today (2025-06-02)."
)

SCHEMA = """
CREATE TABLE cities (
    city_id TEXT PRIMARY KEY, name TEXT NOT NULL, region TEXT NOT NULL, country TEXT NOT NULL,
    population INTEGER NOT NULL, latitude REAL NOT NULL, longitude REAL NOT NULL);
CREATE TABLE current (
    city_id TEXT PRIMARY KEY REFERENCES cities, observed_at TEXT NOT NULL, condition TEXT NOT NULL,
    temp_c REAL NOT NULL, feels_like_c REAL NOT NULL, humidity_pct INTEGER NOT NULL,
    wind_kph REAL NOT NULL, wind_direction TEXT NOT NULL, pressure_hpa INTEGER NOT NULL);
CREATE TABLE daily (
    city_id TEXT NOT NULL REFERENCES cities, date TEXT NOT NULL, condition TEXT NOT NULL,
    temp_min_c REAL NOT NULL, temp_max_c REAL NOT NULL, precipitation_mm REAL NOT NULL,
    precipitation_chance_pct INTEGER NOT NULL, wind_kph REAL NOT NULL, PRIMARY KEY (city_id, date));
CREATE TABLE air_quality (
    city_id TEXT PRIMARY KEY REFERENCES cities, aqi INTEGER NOT NULL, pm2_5 REAL NOT NULL, pm10 REAL NOT NULL,
    o3 REAL NOT NULL, no2 REAL NOT NULL);
"""


class Location(BaseModel):
    city: str
    region: str = Field(description="State, province or region code.")
    country: str = Field(description="ISO 3166-1 alpha-2 country code.")
    latitude: float
    longitude: float


class UnitLabels(BaseModel):
    temperature: Literal["°C", "°F"]
    wind_speed: Literal["km/h", "mph"]
    precipitation: Literal["mm", "in"]


class CurrentWeather(BaseModel):
    location: Location
    observed_at: str
    condition: Condition
    temperature: float
    feels_like: float
    humidity_pct: int
    wind_speed: float
    wind_direction: str
    pressure_hpa: int
    units: UnitLabels


class ForecastDay(BaseModel):
    date: str
    condition: Condition
    temp_min: float
    temp_max: float
    precipitation: float
    precipitation_chance_pct: int
    wind_speed: float


class Forecast(BaseModel):
    location: Location
    days: list[ForecastDay]
    units: UnitLabels


class AirQuality(BaseModel):
    location: Location
    observed_at: str
    aqi: int = Field(description="US EPA Air Quality Index, 0-500 (higher is worse).")
    category: Literal["good", "moderate", "unhealthy_for_sensitive_groups", "unhealthy", "very_unhealthy", "hazardous"]
    dominant_pollutant: Literal["pm2_5", "pm10", "o3", "no2"]
    pm2_5: float = Field(description="Fine particles, µg/m³.")
    pm10: float = Field(description="Coarse particles, µg/m³.")
    o3: float = Field(description="Ozone, µg/m³.")
    no2: float = Field(description="Nitrogen dioxide, µg/m³.")


City = Annotated[str, Field(min_length=1, description=(
    "City name, optionally with a country or region code to disambiguate: 'London', 'Paris, FR', 'Portland, ME'."))]
UnitsParam = Annotated[Units, Field(description="'metric' (°C, km/h, mm) or 'imperial' (°F, mph, inches).")]


class Weather:
    """The weather service's tools over one SQLite database."""

    def __init__(self, db: Database):
        self.db = db

    @tool("Current weather", READ_ONLY)
    def get_current_weather(self, city: City, units: UnitsParam = "metric") -> CurrentWeather:
        """Current conditions in a city: temperature, feels-like, humidity, wind and pressure."""
        with self.db.read() as conn:
            place = _resolve(conn, city)
            row = conn.execute("SELECT * FROM current WHERE city_id = ?", (place["city_id"],)).fetchone()
        return CurrentWeather(
            location=_location(place), observed_at=row["observed_at"], condition=row["condition"],
            temperature=_temp(row["temp_c"], units), feels_like=_temp(row["feels_like_c"], units),
            humidity_pct=row["humidity_pct"], wind_speed=_speed(row["wind_kph"], units),
            wind_direction=row["wind_direction"], pressure_hpa=row["pressure_hpa"], units=_labels(units),
        )

    @tool("Weather forecast", READ_ONLY)
    def get_forecast(
        self,
        city: City,
        days: Annotated[int, Field(ge=1, le=7, description="Number of days, 1-7, starting today.")] = 3,
        units: UnitsParam = "metric",
    ) -> Forecast:
        """Daily forecast for a city: condition, min/max temperature, precipitation and wind, for 1-7 days from today."""
        with self.db.read() as conn:
            place = _resolve(conn, city)
            rows = conn.execute("SELECT * FROM daily WHERE city_id = ? ORDER BY date LIMIT ?", (place["city_id"], days)).fetchall()
        forecast = [
            ForecastDay(
                date=r["date"], condition=r["condition"], temp_min=_temp(r["temp_min_c"], units), temp_max=_temp(r["temp_max_c"], units),
                precipitation=_rain(r["precipitation_mm"], units), precipitation_chance_pct=r["precipitation_chance_pct"],
                wind_speed=_speed(r["wind_kph"], units),
            )
            for r in rows
        ]
        return Forecast(location=_location(place), days=forecast, units=_labels(units))

    @tool("Air quality", READ_ONLY)
    def get_air_quality(self, city: City) -> AirQuality:
        """Current air quality in a city: US AQI (0-500), its category, and pollutant concentrations in µg/m³."""
        with self.db.read() as conn:
            place = _resolve(conn, city)
            row = conn.execute("SELECT * FROM air_quality WHERE city_id = ?", (place["city_id"],)).fetchone()
        pollutants = {k: row[k] for k in ("pm2_5", "pm10", "o3", "no2")}
        # Rough share of each pollutant's contribution, scaled by typical limits, names the dominant one.
        dominant = max(pollutants, key=lambda k: pollutants[k] / {"pm2_5": 35, "pm10": 150, "o3": 140, "no2": 190}[k])
        return AirQuality(
            location=_location(place), observed_at=iso(DEMO_NOW), aqi=row["aqi"], category=_category(row["aqi"]),
            dominant_pollutant=dominant, **pollutants,
        )


def build(data_dir: Path, *, reset: bool = False) -> MCPServer:
    """The weather MCP server over ``data_dir/weather.sqlite`` (seeded on first use)."""
    db = open_database(data_dir / "weather.sqlite", "weather", SCHEMA, seed, reset=reset)
    return register(MCPServer("weather", instructions=INSTRUCTIONS), Weather(db))


def _fold(text: str) -> str:
    # "São Paulo" and "sao paulo" are the same query.
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).strip().lower()


def _resolve(conn: sqlite3.Connection, query: str) -> sqlite3.Row:
    name, _, qualifier = (_fold(part) for part in query.partition(","))
    rows = conn.execute("SELECT * FROM cities ORDER BY population DESC").fetchall()
    matches = [r for r in rows if _fold(r["name"]) == name and qualifier in ("", r["country"].lower(), r["region"].lower())]
    if matches:
        return matches[0]
    known = ", ".join(sorted({r["name"] for r in rows}))
    raise ToolError(f"Unknown city {query!r}. Known cities: {known}. Qualify shared names like 'Portland, ME'.")


def _location(row: sqlite3.Row) -> Location:
    return Location(city=row["name"], region=row["region"], country=row["country"], latitude=row["latitude"], longitude=row["longitude"])


def _labels(units: Units) -> UnitLabels:
    if units == "imperial":
        return UnitLabels(temperature="°F", wind_speed="mph", precipitation="in")
    return UnitLabels(temperature="°C", wind_speed="km/h", precipitation="mm")


def _temp(celsius: float, units: Units) -> float:
    return round(celsius * 9 / 5 + 32, 1) if units == "imperial" else celsius


def _speed(kph: float, units: Units) -> float:
    return round(kph / 1.609344, 1) if units == "imperial" else kph


def _rain(mm: float, units: Units) -> float:
    return round(mm / 25.4, 2) if units == "imperial" else mm


def _category(aqi: int) -> str:
    for limit, name in ((50, "good"), (100, "moderate"), (150, "unhealthy_for_sensitive_groups"), (200, "unhealthy"), (300, "very_unhealthy")):
        if aqi <= limit:
            return name
    return "hazardous"


# ---------------------------------------------------------------- seed data

# name, region, country, population, lat, lon, typical early-June mean °C, rain chance, typical AQI
_CITIES = [
    ("London", "ENG", "GB", 8_900_000, 51.507, -0.128, 16, 0.35, 38),
    ("Paris", "IDF", "FR", 2_100_000, 48.857, 2.352, 19, 0.35, 45),
    ("Paris", "TX", "US", 25_000, 33.661, -95.556, 27, 0.30, 35),
    ("Berlin", "BE", "DE", 3_700_000, 52.520, 13.405, 18, 0.30, 40),
    ("Madrid", "MD", "ES", 3_300_000, 40.417, -3.704, 24, 0.10, 52),
    ("Rome", "LAZ", "IT", 2_800_000, 41.903, 12.496, 23, 0.15, 55),
    ("New York", "NY", "US", 8_300_000, 40.713, -74.006, 21, 0.35, 48),
    ("San Francisco", "CA", "US", 810_000, 37.775, -122.419, 16, 0.05, 30),
    ("Chicago", "IL", "US", 2_700_000, 41.878, -87.630, 20, 0.40, 50),
    ("Portland", "OR", "US", 650_000, 45.515, -122.679, 18, 0.30, 28),
    ("Portland", "ME", "US", 68_000, 43.659, -70.257, 16, 0.35, 25),
    ("Toronto", "ON", "CA", 2_800_000, 43.653, -79.383, 19, 0.35, 42),
    ("Tokyo", "13", "JP", 14_000_000, 35.676, 139.650, 22, 0.50, 58),
    ("Sydney", "NSW", "AU", 5_300_000, -33.869, 151.209, 14, 0.35, 26),
    ("Mumbai", "MH", "IN", 12_500_000, 19.076, 72.878, 30, 0.70, 120),
    ("Delhi", "DL", "IN", 16_800_000, 28.704, 77.102, 34, 0.15, 175),
    ("Cairo", "C", "EG", 10_000_000, 30.044, 31.236, 29, 0.01, 140),
    ("São Paulo", "SP", "BR", 12_300_000, -23.551, -46.633, 18, 0.20, 62),
    ("Reykjavik", "1", "IS", 130_000, 64.147, -21.942, 9, 0.40, 15),
    ("Singapore", "SG", "SG", 5_600_000, 1.352, 103.820, 28, 0.55, 60),
]

_WIND_DIRECTIONS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"]


def _condition(rng: random.Random, rain_chance: float) -> tuple[str, int, float]:
    """A day's condition, precipitation chance (%) and amount (mm), drawn around the city's rain chance."""
    chance = max(0, min(100, round(100 * rain_chance + rng.randint(-20, 20))))
    if rng.random() < chance / 100:
        kind = rng.choice(["drizzle", "rain", "rain", "thunderstorm"])
        return kind, chance, round(rng.uniform(0.5, 4) * (3 if kind == "thunderstorm" else 1), 1)
    return rng.choice(["clear", "clear", "partly_cloudy", "cloudy", "fog" if rain_chance > 0.3 else "clear"]), chance, 0.0


def seed(conn: sqlite3.Connection) -> None:
    """Insert the fixture world: 20 cities with current conditions, a 7-day forecast and air quality."""
    for name, region, country, population, lat, lon, mean_c, rain, aqi in _CITIES:
        city_id = f"{_fold(name).replace(' ', '-')}-{region.lower()}-{country.lower()}"
        rng = random.Random(city_id)  # a str seed is stable across runs and Python processes
        conn.execute("INSERT INTO cities VALUES (?, ?, ?, ?, ?, ?, ?)", (city_id, name, region, country, population, lat, lon))
        today = _seed_days(conn, rng, city_id, mean_c, rain)
        _seed_now(conn, rng, city_id, *today)
        pm25 = round(aqi * rng.uniform(0.2, 0.35), 1)
        conn.execute(
            "INSERT INTO air_quality VALUES (?, ?, ?, ?, ?, ?)",
            (city_id, aqi + rng.randint(-8, 8), pm25, round(pm25 * rng.uniform(1.4, 2.2), 1), round(rng.uniform(30, 110), 1), round(rng.uniform(5, 60), 1)),
        )


def _seed_days(conn: sqlite3.Connection, rng: random.Random, city_id: str, mean_c: float, rain: float) -> tuple[str, float, float]:
    """Insert a 7-day forecast and return today's (condition, min °C, max °C)."""
    days = []
    for offset in range(7):
        condition, chance, mm = _condition(rng, rain)
        mean = mean_c + rng.uniform(-3, 3)
        spread = rng.uniform(3, 6) if condition in ("clear", "partly_cloudy") else rng.uniform(2, 4)
        low, high = round(mean - spread, 1), round(mean + spread, 1)
        day = (DEMO_NOW + timedelta(days=offset)).date().isoformat()
        conn.execute("INSERT INTO daily VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (city_id, day, condition, low, high, mm, chance, round(rng.uniform(5, 30), 1)))
        days.append((condition, low, high))
    return days[0]


def _seed_now(conn: sqlite3.Connection, rng: random.Random, city_id: str, condition: str, low: float, high: float) -> None:
    # 09:00 local-ish: a little above the day's minimum, in today's forecast condition.
    temp = round(low + (high - low) * 0.35, 1)
    wind = round(rng.uniform(3, 35), 1)
    conn.execute(
        "INSERT INTO current VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (city_id, iso(DEMO_NOW), condition, temp, round(temp - wind / 15, 1), rng.randint(30, 95), wind,
         rng.choice(_WIND_DIRECTIONS), rng.randint(995, 1030)),
    )
