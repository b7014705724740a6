"""The intents of the synthetic JSON-extraction data: each intent's entities (kind, required,
value range or pool) and the message templates that mention them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loralab.data.synth_json_pools import EVENTS, FOOD_ITEMS, PRODUCTS, TASKS


@dataclass(frozen=True)
class Entity:
    name: str
    kind: str  # date | time | city | person | amount | quantity | item | order_id
    required: bool = True
    low: int = 1  # quantity range
    high: int = 12
    pool: tuple[str, ...] = ()  # values of an item


@dataclass(frozen=True)
class Intent:
    entities: tuple[Entity, ...]
    templates: tuple[str, ...]  # {field} slots; [ ... ] holds one optional entity's words


def _optional(name: str, kind: str, **kwargs: Any) -> Entity:
    return Entity(name, kind, required=False, **kwargs)


INTENTS: dict[str, Intent] = {
    "book_flight": Intent(
        (Entity("destination", "city"), Entity("date", "date"), _optional("origin", "city"),
         _optional("passengers", "quantity", low=2, high=6)),
        ("Book me a flight to {destination} on {date}[ from {origin}][ for {passengers} people].",
         "I need to fly[ from {origin}] to {destination} on {date}.",
         "Can you get[ {passengers}] plane tickets to {destination} for {date}?",
         "{date}: flight[ from {origin}] to {destination}[, {passengers} passengers].",
         "Would you kindly reserve a flight to {destination}, departing {date}[ from {origin}]?",
         "looking for flights to {destination}[ out of {origin}] on {date}"
         "[ for {passengers} of us]",
         "Please arrange air travel to {destination} on {date}[ for {passengers} travellers].")),
    "order_food": Intent(
        (Entity("item", "item", pool=FOOD_ITEMS), Entity("quantity", "quantity", low=2, high=10),
         _optional("time", "time")),
        ("I'd like to order {quantity} {item}[ for {time}], please.",
         "Can I get {quantity} {item} delivered[ at {time}]?",
         "{quantity} {item}[ by {time}] please",
         "Please place an order for {item}, quantity {quantity}[, to arrive around {time}].",
         "[At {time}, ]we would like {quantity} {item} delivered.",
         "hey could you order me {quantity} {item}[ around {time}]",
         "We're hungry: {quantity} {item}[ for {time}] would be great.")),
    "set_reminder": Intent(
        (Entity("task", "item", pool=TASKS), Entity("time", "time"), _optional("date", "date")),
        ("Remind me to {task} at {time}[ on {date}].",
         "Set a reminder[ for {date}] at {time}: {task}.",
         "Could you please remind me at {time}[ on {date}] to {task}?",
         "don't let me forget to {task}[ on {date}], ping me at {time}",
         "Reminder: {task}, {time}[, {date}]",
         "I need a reminder to {task} at {time}[ on {date}].",
         "At {time}[ on {date}] remind me that I have to {task}.")),
    "transfer_money": Intent(
        (Entity("amount", "amount"), Entity("recipient", "person"), _optional("date", "date")),
        ("Send {amount} to {recipient}[ on {date}].",
         "Please transfer {amount} to {recipient}'s account[ on {date}].",
         "I want to pay {recipient} {amount}[ on {date}].",
         "Could you wire {amount} to {recipient}[, scheduled for {date}]?",
         "move {amount} over to {recipient}[ on {date}]",
         "[On {date}, ]transfer {amount} to {recipient}.",
         "{recipient} needs {amount} from me[ by {date}], can you send it?")),
    "book_hotel": Intent(
        (Entity("city", "city"), Entity("check_in", "date"),
         _optional("nights", "quantity", low=2, high=14), _optional("guests", "quantity", low=2,
                                                                    high=6)),
        ("Book a hotel in {city} from {check_in}[ for {nights} nights][, {guests} guests].",
         "I need a room in {city} checking in {check_in}[, staying {nights} nights].",
         "Can you find me a hotel in {city} for {check_in}[ for {guests} people]?",
         "Please reserve accommodation in {city}, arrival {check_in}[, {nights} nights]"
         "[, {guests} adults].",
         "hotel in {city} {check_in}[ {nights} nights]",
         "We're travelling to {city} and need a hotel from {check_in}[ for {guests} of us].",
         "[For {nights} nights starting ]{check_in} I need a place to stay in {city}.")),
    "check_weather": Intent(
        (Entity("city", "city"), _optional("date", "date")),
        ("What's the weather like in {city}[ on {date}]?",
         "Will it rain in {city}[ on {date}]?",
         "weather in {city}[ {date}]",
         "Could you tell me the forecast for {city}[ for {date}]?",
         "[On {date}, ]should I bring an umbrella in {city}?",
         "How warm will it be in {city}[ on {date}]?",
         "I'm heading to {city}[ on {date}], what's the forecast?")),
    "schedule_meeting": Intent(
        (Entity("person", "person"), Entity("date", "date"), Entity("time", "time"),
         _optional("city", "city")),
        ("Schedule a meeting with {person} on {date} at {time}[ in {city}].",
         "Set up a call with {person} for {date} at {time}.",
         "Can you book time with {person} at {time} on {date}[ in our {city} office]?",
         "{date} at {time}: meeting with {person}[ in {city}]",
         "Please arrange a meeting between me and {person} on {date}, {time}[, {city} office].",
         "put a meeting with {person} in my calendar for {time} on {date}",
         "I'd like to meet {person}[ in {city}] on {date} at {time}.")),
    "cancel_order": Intent(
        (Entity("item", "item", pool=PRODUCTS), _optional("order_id", "order_id")),
        ("Cancel my order for the {item}[, order number {order_id}].",
         "Please cancel the {item} I ordered[ (order {order_id})].",
         "I no longer want the {item}, please cancel it[, order {order_id}].",
         "cancel the {item}[ from order {order_id}]",
         "Could you cancel the delivery of my {item}?[ The order number is {order_id}.]",
         "I'd like to cancel the {item} I bought[, order {order_id}].",
         "[Order {order_id}: ]please stop the {item} from shipping.")),
    "rent_car": Intent(
        (Entity("city", "city"), Entity("date", "date"),
         _optional("days", "quantity", low=2, high=21)),
        ("Rent me a car in {city} from {date}[ for {days} days].",
         "I need a rental car in {city} on {date}[, {days} days].",
         "Can you reserve a car for pick-up in {city} on {date}[ for {days} days]?",
         "car rental in {city} {date}[ {days} days]",
         "Please book a vehicle in {city} starting {date}[ for a period of {days} days].",
         "We'll need a car when we land in {city} on {date}[, for {days} days].",
         "[For {days} days from ]{date} I want to hire a car in {city}.")),
    "buy_tickets": Intent(
        (Entity("event", "item", pool=EVENTS), Entity("quantity", "quantity", low=2, high=8),
         _optional("date", "date"), _optional("city", "city")),
        ("Buy {quantity} tickets for {event}[ on {date}].",
         "Can I get {quantity} tickets to see {event}[ in {city}]?",
         "I'd like {quantity} seats for {event}[ on {date}][ in {city}], please.",
         "{quantity} tickets for {event}[ {date}]",
         "Please purchase {quantity} tickets for {event}[ in {city}][ on {date}].",
         "get me {quantity} tix for {event}[ on {date}]",
         "[On {date}, ]{quantity} of us want to go to {event}. Can you get tickets?")),
}
