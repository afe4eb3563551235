const restaurants = ["Burger Junction", "Spice Route", "Pizza Palace", "Sushi Corner", "Dosa Darbar"]
const items = ["Veg Burger", "Paneer Butter Masala", "Margherita Pizza", "Salmon Nigiri Set", "Masala Dosa"]
const statuses = ["PLACED", "PREPARING", "DELIVERED", "CANCELLED"]

/**
 * `count` orders from `start`, `stepSeconds` apart, amounts with every cent pattern; every 10th order
 * shares its timestamp with the previous one (ties must survive batch boundaries).
 */
export const insertOrdersSql = (table: string, from: number, count: number, start: string, stepSeconds: number) => `
  INSERT INTO "${table}" (customer_name, restaurant_name, item, amount, order_status, created_at)
  SELECT 'Customer ' || g,
         (ARRAY['${restaurants.join("','")}'])[1 + g % 5],
         (ARRAY['${items.join("','")}'])[1 + g % 5],
         ((g * 7919) % 250000) / 100.0,
         (ARRAY['${statuses.join("','")}'])[1 + g % 4],
         TIMESTAMP '${start}' + ((g - g % 10 / 9) * INTERVAL '${stepSeconds} seconds')
  FROM generate_series(${from}, ${from + count - 1}) AS g`
